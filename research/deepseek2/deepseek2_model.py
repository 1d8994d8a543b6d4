"""DeepSeek-V2 causal LM, composed from mf-ext's shared blocks: pre-norm decoder (``DecoderSpec``) with multi-head
latent attention (``mf_ext.modules.mla.MLAttention``) and, after the first ``first_k_dense_replace`` dense layers,
the shared MoE block with group-limited softmax routing (``mf_ext.modules.routing.GroupedMoE``).

Numerics follow HF transformers 4.57.1's ``DeepseekV2ForCausalLM``: rotary on the ``qk_rope_head_dim`` slice as
complex pairs (interleaved), yarn's attention factor on the rotary tables only (HF's V2 softmax scale is
``qk_head_dim ** -0.5``, no mscale), routing weights never renormalised, times ``routed_scaling_factor``.
KV cache: the expanded per-head keys and values (see ``mf_ext.modules.mla``).
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, MoELossMixin, RopeConfig
from mf_ext.modules.causal_lm import CausalLM
from mf_ext.modules.mla import MLAttention
from mf_ext.modules.routing import GroupedMoE

from .deepseek2_config import DeepSeek2Config

__all__ = ["DeepSeek2ForCausalLM", "deepseek2_spec"]


def _attention(config: DeepSeek2Config):
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
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            softmax_dtype=spec.softmax_dtype,
            norm_dtype=spec.norm_dtype,
            std=spec.init_std,
        )

    return factory


def _moe(config: DeepSeek2Config):
    grouped = config.topk_method == "group_limited_greedy"

    def factory(spec: DecoderSpec, layer: int):
        if layer < config.first_k_dense_replace:
            return None  # the spec's dense SwiGLU
        return GroupedMoE(
            spec.hidden_size,
            config.moe_intermediate_size,
            config.n_routed_experts,
            config.num_experts_per_tok,
            norm_topk_prob=False,
            shared_intermediate_size=config.moe_intermediate_size * (config.n_shared_experts or 0),
            score_fn="softmax",
            n_group=config.n_group if grouped else 1,
            topk_group=config.topk_group if grouped else 1,
            group_score="max",
            routed_scaling_factor=config.routed_scaling_factor,
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            std=spec.init_std,
        )

    return factory


def deepseek2_spec(config: DeepSeek2Config) -> DecoderSpec:
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
            style="interleaved",
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


class DeepSeek2ForCausalLM(MoELossMixin, CausalLM):
    """DeepSeek-V2 causal LM (inputs and outputs: ``mf_ext.modules.CausalLM``)."""

    config_class = DeepSeek2Config
    base_model_prefix = "deepseek2"

    @classmethod
    def decoder_spec(cls, config: DeepSeek2Config) -> DecoderSpec:
        return deepseek2_spec(config)
