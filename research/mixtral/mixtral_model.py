"""Mixtral causal LM, composed from mf-ext's shared blocks: Llama's decoder (``DecoderSpec``) with the shared MoE
block (``mf_ext.modules.MoE``: softmax top-k, top-k weights renormalised, experts stacked) in every layer.

Parameter names are MindFormers' research Mixtral's (``feed_forward.router.dense.weight``,
``feed_forward.ffn.w1/w2/w3.weight`` stacked ``(E, out, in)``); KV cache and ``generate()`` come from ``CausalLM``;
with ``output_router_logits`` the training loss adds ``router_aux_loss_coef`` x the load-balancing loss.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, MoE, MoELossMixin, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .mixtral_config import MixtralConfig

__all__ = ["MixtralForCausalLM", "mixtral_spec"]


def _moe(config: MixtralConfig):
    def factory(spec: DecoderSpec, layer: int) -> MoE:
        return MoE(
            spec.hidden_size,
            config.intermediate_size,
            config.num_experts,
            config.num_experts_per_tok,
            norm_topk_prob=True,  # Mixtral always renormalises its top-k weights
            param_dtype=spec.param_dtype,
            compute_dtype=spec.compute_dtype,
            std=spec.init_std,
        )

    return factory


def mixtral_spec(config: MixtralConfig) -> DecoderSpec:
    """RMSNorm pre-norm blocks, GQA without biases, half-split rotary, optional sliding window, MoE feed-forward."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        sliding_window=config.sliding_window,
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


class MixtralForCausalLM(MoELossMixin, CausalLM):
    """Mixtral causal LM (inputs and outputs: ``mf_ext.modules.CausalLM``)."""

    config_class = MixtralConfig
    base_model_prefix = "mixtral"

    @classmethod
    def decoder_spec(cls, config: MixtralConfig) -> DecoderSpec:
        return mixtral_spec(config)
