"""Qwen3-MoE causal LM, composed from mf-ext's shared blocks: GQA attention with per-head q/k RMSNorm
(``DecoderSpec.qk_norm``) and, per HF's ``decoder_sparse_step`` / ``mlp_only_layers`` rule, a dense SwiGLU
(``feed_forward.w1/w2/w3``) or the shared MoE block (``mf_ext.modules.MoE``: softmax top-k, ``norm_topk_prob``,
``feed_forward.router.dense`` + experts stacked ``feed_forward.ffn.w1/w2/w3`` ``(E, out, in)``).

KV cache and ``generate()`` come from ``CausalLM``; with ``output_router_logits`` the training loss adds
``router_aux_loss_coef`` x the load-balancing loss.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, MoE, MoELossMixin, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .hf_config import is_sparse_layer
from .qwen3_moe_config import Qwen3MoeConfig

__all__ = ["Qwen3MoeForCausalLM", "qwen3_moe_spec"]


def _moe(config: Qwen3MoeConfig):
    def factory(spec: DecoderSpec, layer: int) -> MoE | None:
        if not is_sparse_layer(layer, config.num_experts, config.decoder_sparse_step, config.mlp_only_layers):
            return None  # the spec's dense SwiGLU
        return MoE(
            spec.hidden_size,
            config.moe_intermediate_size,
            config.num_experts,
            config.num_experts_per_tok,
            norm_topk_prob=config.norm_topk_prob,
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            std=spec.init_std,
        )

    return factory


def qwen3_moe_spec(config: Qwen3MoeConfig) -> DecoderSpec:
    """RMSNorm pre-norm blocks, GQA with q/k norm (optional biases), half-split rotary, dense or MoE feed-forward."""
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
        qk_norm=True,
        rope=RopeConfig.from_hf(config.head_dim, config.theta, config.rope_scaling, config.max_position_embedding),
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


class Qwen3MoeForCausalLM(MoELossMixin, CausalLM):
    """Qwen3-MoE causal LM (inputs and outputs: ``mf_ext.modules.CausalLM``)."""

    config_class = Qwen3MoeConfig
    base_model_prefix = "qwen3_moe"

    @classmethod
    def decoder_spec(cls, config: Qwen3MoeConfig) -> DecoderSpec:
        return qwen3_moe_spec(config)
