"""Llama 3 / 3.1 causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

Parameter names are MindFormers' Llama names (``model.tok_embeddings.embedding_weight``,
``model.layers.{i}.attention.wq.weight`` ...), so one checkpoint loads into this model and into MindFormers'
built-in ``LlamaForCausalLM`` alike. Runs with plain MindSpore ops on CPU and Ascend, PyNative and graph mode
(one decoder-layer graph compiled for all layers); the static KV cache and ``generate()`` come from ``CausalLM``.
"""

from __future__ import annotations

import numpy as np

from mf_ext.modules import DecoderSpec, RopeConfig, rope_parameters
from mf_ext.modules.causal_lm import CausalLM

from .llama3_1_config import Llama3Config

__all__ = ["Llama3ForCausalLM", "llama3_spec", "rope_inv_freq"]

# HF's name for the smoothed-band rope scaling Llama 3.1 introduced
ROPE_KIND_ALIASES = {"llama3": "smoothed"}


def rope_inv_freq(head_dim: int, theta: float, rope_scaling: dict | None) -> np.ndarray:
    """Rotary inverse frequencies (float32, ``head_dim // 2``) for a ``Llama3Config.rope_scaling`` value."""
    return rope_parameters(RopeConfig.from_hf(head_dim, theta, rope_scaling, kind_aliases=ROPE_KIND_ALIASES))[0]


def llama3_spec(config: Llama3Config) -> DecoderSpec:
    """Llama: RMSNorm pre-norm blocks, GQA without biases, SwiGLU, half-split rotary (default/linear/llama3)."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.ffn_hidden_size,
        qkv_concat=config.qkv_concat,
        rope=RopeConfig.from_hf(
            config.head_dim,
            config.theta,
            config.rope_scaling,
            config.max_position_embedding,
            kind_aliases=ROPE_KIND_ALIASES,
        ),
        norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        compute_dtype=config.compute_dtype,
        param_dtype=config.param_init_type,
        embedding_dtype=config.embedding_init_type,
        norm_dtype=config.layernorm_compute_type,
        softmax_dtype=config.softmax_compute_type,
        rotary_dtype=config.rotary_dtype,
        init_std=config.init_method_std,
    )


class Llama3ForCausalLM(CausalLM):
    """Llama 3 / 3.1 causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = Llama3Config
    base_model_prefix = "llama3"

    @classmethod
    def decoder_spec(cls, config: Llama3Config) -> DecoderSpec:
        return llama3_spec(config)
