"""Baichuan2 causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

Llama's block (RMSNorm pre-norm, multi-head attention without biases, SwiGLU) with Baichuan2's position encoding --
rotate-half rotary, base 10000 (7B), or ALiBi with BLOOM's slopes (13B) -- and its NormHead: the ``lm_head`` rows are
L2-normalised in the forward pass, so raw checkpoint weights give Baichuan2's logits. Parameter names are
MindFormers' (``attention.wq/wk/wv/wo``, ``feed_forward.w1/w2/w3``, ``model.norm_out``, ``lm_head``); with
``qkv_concat`` the projection is ``attention.w_qkv`` holding ``W_pack`` unchanged (``[q; k; v]``).
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .baichuan2_config import Baichuan2Config

__all__ = ["Baichuan2ForCausalLM", "baichuan2_spec"]


def baichuan2_spec(config: Baichuan2Config) -> DecoderSpec:
    alibi = config.position_embedding == "alibi"
    rope = None if alibi else RopeConfig.from_hf(config.head_dim, config.theta, None, config.max_position_embedding)
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_concat=config.qkv_concat,
        qkv_layout="stacked",
        ffn_concat=False,
        alibi=alibi,
        rope=rope,
        norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        lm_head_norm=True,
        compute_dtype=config.compute_dtype,
        param_dtype=config.param_init_type,
        embedding_dtype=config.embedding_init_type,
        norm_dtype=config.layernorm_compute_type,
        softmax_dtype=config.softmax_compute_type,
        rotary_dtype=config.rotary_dtype,
        init_std=config.init_method_std,
    )


class Baichuan2ForCausalLM(CausalLM):
    """Baichuan2 causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = Baichuan2Config
    base_model_prefix = "baichuan2"

    @classmethod
    def decoder_spec(cls, config: Baichuan2Config) -> DecoderSpec:
        return baichuan2_spec(config)
