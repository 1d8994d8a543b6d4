"""Qwen2 causal LM (Qwen1.5 / Qwen2 / Qwen2.5), composed from mf-ext's shared blocks (``mf_ext.modules``).

A Llama-architecture decoder with q/k/v biases (no o_proj bias). Parameter names are MindFormers' Llama names
(``model.tok_embeddings.embedding_weight``, ``model.layers.{i}.attention.wq.weight`` / ``.bias`` ...), so one checkpoint
loads into this model and into MindFormers' built-in ``LlamaForCausalLM`` with ``qkv_has_bias: True`` (what
MindFormers' own qwen2_5 YAMLs run) alike. CPU and Ascend, PyNative and graph mode; the static KV cache and
``generate()`` come from ``CausalLM``.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .qwen2_config import Qwen2Config

__all__ = ["Qwen2ForCausalLM", "qwen2_spec"]

# HF's name for the smoothed-band rope scaling
ROPE_KIND_ALIASES = {"llama3": "smoothed"}


def qwen2_spec(config: Qwen2Config) -> DecoderSpec:
    """Qwen2: RMSNorm pre-norm blocks, GQA with q/k/v biases, SwiGLU, half-split rotary, full attention."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=True,
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


class Qwen2ForCausalLM(CausalLM):
    """Qwen2 causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = Qwen2Config
    base_model_prefix = "qwen2"

    @classmethod
    def decoder_spec(cls, config: Qwen2Config) -> DecoderSpec:
        return qwen2_spec(config)
