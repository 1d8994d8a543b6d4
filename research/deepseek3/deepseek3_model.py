"""DeepSeek-V3 / R1 causal LM, composed from mf-ext's shared blocks: pre-norm decoder (``DecoderSpec``) with
multi-head latent attention (``mf_ext.modules.mla.MLAttention``) and, after the first ``first_k_dense_replace``
dense layers, the shared MoE block with sigmoid + correction-bias group-limited routing
(``mf_ext.modules.routing.GroupedMoE``).

Numerics follow HF transformers 4.57.1's ``DeepseekV3ForCausalLM``: rotary on the ``qk_rope_head_dim`` slice
(interleaved pairs with ``rope_interleave``, else halves), yarn's attention factor on the rotary tables and
``mscale(factor, mscale_all_dim) ** 2`` on the softmax scale, top-k weights renormalised (``norm_topk_prob``) and
times ``routed_scaling_factor``. KV cache: the expanded per-head keys and values (see ``mf_ext.modules.mla``).
The multi-token-prediction layer of DeepSeek's checkpoints is not part of the model (see weight_map.py).
"""

from __future__ import annotations

import math

from mf_ext.modules import DecoderSpec, MoELossMixin, RopeConfig
from mf_ext.modules.causal_lm import CausalLM
from mf_ext.modules.mla import MLAttention
from mf_ext.modules.routing import GroupedMoE

from .deepseek3_config import DeepSeek3Config

__all__ = ["DeepSeek3ForCausalLM", "deepseek3_spec", "softmax_scale"]


def softmax_scale(config: DeepSeek3Config) -> float:
    """``qk_head_dim ** -0.5``, times ``mscale ** 2`` with yarn's ``mscale_all_dim`` (HF's DeepseekV3Attention)."""
    scale = config.qk_head_dim**-0.5
    rope_scaling = config.rope_scaling or {}
    mscale_all_dim = rope_scaling.get("mscale_all_dim", 0)
    factor = rope_scaling.get("factor", 1.0)
    if mscale_all_dim and factor > 1:
        mscale = 0.1 * mscale_all_dim * math.log(factor) + 1.0
        scale = scale * mscale * mscale
    return scale


def _attention(config: DeepSeek3Config):
    def factory(spec: DecoderSpec, layer: int) -> MLAttention:
        return MLAttention(
            spec.hidden_size,
            spec.num_heads,
            config.kv_lora_rank,
            config.qk_nope_head_dim,
            config.qk_rope_head_dim,
            config.v_head_dim,
            q_rank=config.q_lora_rank,
            bias=config.attention_bias,
            rope_interleaved=spec.rope.style == "interleaved",  # the decoder's tables' layout
            softmax_scale=softmax_scale(config),
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            softmax_dtype=spec.softmax_dtype,
            norm_dtype=spec.norm_dtype,
            std=spec.init_std,
        )

    return factory


def _moe(config: DeepSeek3Config):
    def factory(spec: DecoderSpec, layer: int):
        if layer < config.first_k_dense_replace:
            return None  # the spec's dense SwiGLU
        return GroupedMoE(
            spec.hidden_size,
            config.moe_intermediate_size,
            config.n_routed_experts,
            config.num_experts_per_tok,
            norm_topk_prob=config.norm_topk_prob,
            shared_intermediate_size=config.moe_intermediate_size * (config.n_shared_experts or 1),
            score_fn="sigmoid",
            n_group=config.n_group or 1,
            topk_group=config.topk_group or 1,
            group_score="top2_sum",
            correction_bias=True,
            routed_scaling_factor=config.routed_scaling_factor,
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            std=spec.init_std,
        )

    return factory


def deepseek3_spec(config: DeepSeek3Config) -> DecoderSpec:
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        head_dim=config.qk_head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        rope=RopeConfig.from_hf(
            config.qk_rope_head_dim,
            config.theta,
            config.rope_scaling,
            config.max_position_embedding,
            style="interleaved" if config.rope_interleave else "half",
        ),
        attention_factory=_attention(config),
        cache_head_dims=(config.qk_head_dim, config.v_head_dim),
        ffn_concat=False,
        mlp_factory=_moe(config),
        norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        compute_dtype=config.compute_dtype,
        param_dtype=config.param_init_type,
        norm_dtype=config.layernorm_compute_type,
        softmax_dtype=config.softmax_compute_type,
        rotary_dtype=config.rotary_dtype,
        init_std=config.init_method_std,
    )


class DeepSeek3ForCausalLM(MoELossMixin, CausalLM):
    """DeepSeek-V3 causal LM (inputs and outputs: ``mf_ext.modules.CausalLM``)."""

    config_class = DeepSeek3Config
    base_model_prefix = "deepseek3"

    @classmethod
    def decoder_spec(cls, config: DeepSeek3Config) -> DecoderSpec:
        return deepseek3_spec(config)
