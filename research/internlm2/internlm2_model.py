"""InternLM2 / InternLM causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

Llama's architecture (RMSNorm pre-norm blocks, GQA, SwiGLU, rotate-half rotary with dynamic-NTK or linear scaling)
with InternLM's optional q/k/v/o biases. Parameter names are MindFormers' (``attention.wq/wk/wv/wo``,
``feed_forward.w1/w2/w3``, ``model.norm_out``, ``lm_head``); with ``qkv_concat`` the fused projection is
``attention.w``, MindFormers' InternLM2 name, holding InternLM2's ``wqkv`` rows unchanged.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .internlm2_config import InternLM2Config

__all__ = ["InternLM2ForCausalLM", "internlm2_spec"]


def internlm2_spec(config: InternLM2Config) -> DecoderSpec:
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=config.has_bias,
        o_bias=config.has_bias,
        qkv_concat=config.qkv_concat,
        ffn_concat=False,
        rope=RopeConfig.from_hf(config.head_dim, config.theta, config.rope_scaling, config.max_position_embedding),
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


class InternLM2ForCausalLM(CausalLM):
    """InternLM2 / InternLM causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = InternLM2Config
    base_model_prefix = "internlm2"
    PARAM_RENAMES = ((r"\.attention\.w_qkv\.", ".attention.w."),)

    @classmethod
    def decoder_spec(cls, config: InternLM2Config) -> DecoderSpec:
        return internlm2_spec(config)
