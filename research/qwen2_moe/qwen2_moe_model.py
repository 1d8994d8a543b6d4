"""Qwen2-MoE causal LM, composed from mf-ext's shared blocks: GQA attention with q/k/v biases and, per HF's
``decoder_sparse_step`` / ``mlp_only_layers`` rule, a dense SwiGLU (``feed_forward.w1/w2/w3``) or the shared MoE
block (``mf_ext.modules.MoE``: softmax top-k, ``norm_topk_prob``, experts stacked ``(E, out, in)``, a shared expert
scaled by ``sigmoid(shared_experts_gate(x))``), under MindFormers' ``LlamaFeedForwardWithMoE`` names
(``feed_forward.routed_experts.router.dense`` / ``.ffn.w1``, ``feed_forward.shared_experts.w1``,
``feed_forward.shared_experts_gate``).

KV cache and ``generate()`` come from ``CausalLM``; with ``output_router_logits`` the training loss adds
``router_aux_loss_coef`` x the load-balancing loss.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, MoE, MoELossMixin, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .hf_config import is_sparse_layer
from .qwen2_moe_config import Qwen2MoeConfig

__all__ = ["Qwen2MoeForCausalLM", "qwen2_moe_spec"]


def _moe(config: Qwen2MoeConfig):
    def factory(spec: DecoderSpec, layer: int) -> MoE | None:
        if not is_sparse_layer(layer, config.num_experts, config.decoder_sparse_step, config.mlp_only_layers):
            return None  # the spec's dense SwiGLU
        return MoE(
            spec.hidden_size,
            config.moe_intermediate_size,
            config.num_experts,
            config.num_experts_per_tok,
            norm_topk_prob=config.norm_topk_prob,
            shared_intermediate_size=config.shared_expert_intermediate_size,
            shared_gate=True,
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            std=spec.init_std,
        )

    return factory


def qwen2_moe_spec(config: Qwen2MoeConfig) -> DecoderSpec:
    """RMSNorm pre-norm blocks, GQA with q/k/v biases, half-split rotary, dense or MoE (+ shared expert) feed-forward."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=config.qkv_bias,
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


class Qwen2MoeForCausalLM(MoELossMixin, CausalLM):
    """Qwen2-MoE causal LM (inputs and outputs: ``mf_ext.modules.CausalLM``)."""

    config_class = Qwen2MoeConfig
    base_model_prefix = "qwen2_moe"
    # MindFormers' LlamaFeedForwardWithMoE keeps the routed experts under ``routed_experts``
    PARAM_RENAMES = ((r"\.feed_forward\.(router|ffn)\.", r".feed_forward.routed_experts.\1."),)

    @classmethod
    def decoder_spec(cls, config: Qwen2MoeConfig) -> DecoderSpec:
        return qwen2_moe_spec(config)
