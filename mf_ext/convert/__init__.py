"""Declarative, streamed, bit-exact weight conversion between HF and MindSpore checkpoints.

A model family declares its mapping once (``research/<model>/weight_map.py``, built from
:mod:`mf_ext.convert.spec`); :func:`hf_to_ms` and :func:`ms_to_hf` derive both directions from it.
Attributes load lazily (PEP 562) so ``mf-ext convert --help`` imports nothing heavy; numpy comes with the engine,
torch only to read ``.bin``/``.pth`` files.
"""

from __future__ import annotations

_EXPORTS = {
    "hf_to_ms": "engine",
    "ms_to_hf": "engine",
    "Plan": "engine",
    "Result": "engine",
    "config_beside": "engine",
    "find_source_config": "engine",
    "ConversionError": "errors",
    "lora_to_peft": "lora",
    "LAYER": "spec",
    "EXPERT": "spec",
    "Chain": "spec",
    "Concat": "spec",
    "Drop": "spec",
    "Format": "spec",
    "Fp8BlockDequant": "spec",
    "Fuse": "spec",
    "Option": "spec",
    "QkvGroups": "spec",
    "Regroup": "spec",
    "Rename": "spec",
    "Reshape": "spec",
    "RotaryPermute": "spec",
    "RowInterleave": "spec",
    "Spec": "spec",
    "Split": "spec",
    "Stack": "spec",
    "Transpose": "spec",
    "mcore_experts": "spec",
    "is_train_state": "train_state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'mf_ext.convert' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"mf_ext.convert.{mod}"), name)
