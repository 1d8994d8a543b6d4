"""GPT2 causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

LayerNorm pre-norm blocks, multi-head attention with q/k/v/o biases and no rotary (``c_attn`` kept fused as
``attention.w_qkv``, ``[q; k; v]`` rows), learned absolute positions (``model.pos_embeddings``, following the
attention mask in left-padded batches as HF does), the two-layer GELU MLP (``feed_forward.c_fc`` / ``c_proj``,
``gelu_new`` by default) and a head tied to the token embedding. Static KV cache and ``generate()`` come from
``CausalLM``; PyNative and graph mode on CPU and Ascend.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec
from mf_ext.modules.causal_lm import CausalLM

from .gpt2_config import GPT2LMConfig

__all__ = ["GPT2ForCausalLM", "gpt2_spec"]


def gpt2_spec(config: GPT2LMConfig) -> DecoderSpec:
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=True,
        o_bias=True,
        qkv_concat=True,
        qkv_layout="stacked",
        ffn_concat=False,
        rope=None,
        mlp="gelu",
        mlp_act=config.hidden_act,
        mlp_bias=True,
        norm="layer",
        norm_eps=config.layernorm_epsilon,
        learned_positions=config.max_position_embedding,
        tie_word_embeddings=config.tie_word_embeddings,
        compute_dtype=config.compute_dtype,
        param_dtype=config.param_init_type,
        embedding_dtype=config.embedding_init_type,
        norm_dtype=config.layernorm_compute_type,
        softmax_dtype=config.softmax_compute_type,
        init_std=config.init_method_std,
    )


class GPT2ForCausalLM(CausalLM):
    """GPT2 causal LM (see ``mf_ext.modules.CausalLM`` for inputs, outputs, KV cache and ``generate``)."""

    config_class = GPT2LMConfig
    base_model_prefix = "gpt2"

    @classmethod
    def decoder_spec(cls, config: GPT2LMConfig) -> DecoderSpec:
        return gpt2_spec(config)
