"""Mistral HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

    mf-ext convert hf_to_ms --model mistral --input_path HF_DIR --output_path mistral.ckpt [--dtype bfloat16]

The mapping is ``weight_map.SPEC``; the engine is :mod:`mf_ext.convert`.
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the HF Mistral checkpoint at ``input_path`` to MindSpore at ``output_path`` (``dtype=None`` keeps the
    source dtype; keyword options as ``mf_ext.convert.hf_to_ms``)."""
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
