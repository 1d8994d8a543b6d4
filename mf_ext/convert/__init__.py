"""Declarative, streamed, bit-exact weight conversion between HF and MindSpore checkpoints.

A model family declares its mapping once (``research/<model>/weight_map.py``, built from
:mod:`mf_ext.convert.spec`); :func:`hf_to_ms` and :func:`ms_to_hf` derive both directions from it. Importing
this package is cheap (numpy only); torch is imported only to read ``.bin``/``.pth`` files.
"""

from mf_ext.convert.engine import Plan, Result, config_beside, find_source_config, hf_to_ms, ms_to_hf
from mf_ext.convert.errors import ConversionError
from mf_ext.convert.spec import (
    LAYER,
    Concat,
    Drop,
    Fuse,
    QkvGroups,
    Rename,
    RotaryPermute,
    RowInterleave,
    Spec,
    Transpose,
)

__all__ = [
    "LAYER", "Concat", "ConversionError", "Drop", "Fuse", "Plan", "QkvGroups", "Rename", "Result",
    "RotaryPermute", "RowInterleave", "Spec", "Transpose", "config_beside", "find_source_config", "hf_to_ms",
    "ms_to_hf",
]
