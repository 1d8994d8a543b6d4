"""Mistral causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

A Llama-architecture decoder (RMSNorm pre-norm blocks, GQA without biases, SwiGLU, rotate-half rotary) whose
attention is restricted to a sliding window of the last ``sliding_window`` positions (HF's rule: query ``i`` sees
keys ``i - window < j <= i``), with and without the static KV cache (the cache keeps every position; the mask
hides what left the window). Parameter names are MindFormers' Llama names (``model.layers.{i}.attention.wq`` ...).
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .mistral_config import MistralConfig

__all__ = ["MistralForCausalLM", "mistral_spec"]


def mistral_spec(config: MistralConfig) -> DecoderSpec:
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        sliding_window=config.sliding_window,
        rope=RopeConfig.from_hf(config.head_dim, config.theta, None, config.max_position_embedding),
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


class MistralForCausalLM(CausalLM):
    """Mistral causal LM (see ``mf_ext.modules.CausalLM`` for inputs, outputs, KV cache and ``generate``)."""

    config_class = MistralConfig
    base_model_prefix = "mistral"

    @classmethod
    def decoder_spec(cls, config: MistralConfig) -> DecoderSpec:
        return mistral_spec(config)
