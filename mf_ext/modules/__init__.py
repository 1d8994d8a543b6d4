"""Shared model building blocks (MindSpore cells with CPU kernels; Ascend runs them too).

A family's model file composes these (torchtune's ``modules/`` + per-family builders): it maps its config to a
``DecoderSpec`` and subclasses ``CausalLM``. Layers: ``Linear``, ``RowNormLinear``, ``Embedding``, ``RMSNorm``,
``LayerNorm``; rotary: ``RopeConfig``, ``rope_parameters``, ``RotaryEmbedding``, ``apply_rotary``; attention:
``Attention``, ``attention_bias``, ``alibi_slopes``, ``cache_slots``, ``write_cache``; MLPs: ``SwiGLU``, ``GeluMLP``; stack:
``DecoderSpec``, ``DecoderLayer``, ``Decoder``; model: ``CausalLM``; mixture of experts (``moe``): ``MoE``,
``MoELossMixin``, ``load_balancing_loss``.

Importing this package imports MindSpore (and ``CausalLM`` MindFormers, on first use).
"""

from __future__ import annotations

from .attention import Attention, alibi_slopes, attention_bias, cache_slots, write_cache
from .decoder import (
    Decoder,
    DecoderLayer,
    DecoderSpec,
    layer_reuse_enabled,
    lm_head,
    make_attention,
    make_mlp,
    make_norm,
    structure_key,
)
from .layers import Embedding, LayerNorm, Linear, RMSNorm, RowNormLinear
from .mlp import GeluMLP, SwiGLU, activation, gelu_new
from .moe import MoE, MoELossMixin, load_balancing_loss
from .rotary import ROPE_KINDS, RopeConfig, RotaryEmbedding, apply_rotary, rope_parameters

__all__ = [
    "ROPE_KINDS",
    "Attention",
    "CausalLM",
    "Decoder",
    "DecoderLayer",
    "DecoderSpec",
    "Embedding",
    "GeluMLP",
    "LayerNorm",
    "Linear",
    "MoE",
    "MoELossMixin",
    "RMSNorm",
    "RopeConfig",
    "RowNormLinear",
    "RotaryEmbedding",
    "SwiGLU",
    "activation",
    "alibi_slopes",
    "apply_rotary",
    "attention_bias",
    "cache_slots",
    "gelu_new",
    "layer_reuse_enabled",
    "lm_head",
    "load_balancing_loss",
    "make_attention",
    "make_mlp",
    "make_norm",
    "rope_parameters",
    "structure_key",
    "write_cache",
]


def __getattr__(name: str):
    # CausalLM imports MindFormers (seconds); the blocks alone need only MindSpore.
    if name == "CausalLM":
        from .causal_lm import CausalLM

        return CausalLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
