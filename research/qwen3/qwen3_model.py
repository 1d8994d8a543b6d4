"""Qwen3 causal LM (dense Qwen3), composed from mf-ext's shared blocks (``mf_ext.modules``).

A Llama-architecture decoder with a per-head RMSNorm of q and k before rotary (``DecoderSpec.qk_norm``), an explicit
``head_dim`` and optional q/k/v/o biases. Parameter names are MindFormers' Llama names plus ``attention.q_norm`` /
``attention.k_norm``. CPU and Ascend, PyNative and graph mode; the static KV cache and ``generate()`` come from
``CausalLM``.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .qwen3_config import Qwen3Config

__all__ = ["Qwen3ForCausalLM", "qwen3_spec"]

# HF's name for the smoothed-band rope scaling
ROPE_KIND_ALIASES = {"llama3": "smoothed"}


def qwen3_spec(config: Qwen3Config) -> DecoderSpec:
    """Qwen3: RMSNorm pre-norm blocks, GQA with per-head q/k RMSNorm, SwiGLU, half-split rotary, full attention."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=config.attention_bias,
        o_bias=config.attention_bias,
        qkv_concat=config.qkv_concat,
        qk_norm=True,
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


class Qwen3ForCausalLM(CausalLM):
    """Qwen3 causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = Qwen3Config
    base_model_prefix = "qwen3"

    @classmethod
    def decoder_spec(cls, config: Qwen3Config) -> DecoderSpec:
        return qwen3_spec(config)
