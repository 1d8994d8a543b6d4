"""GLM-2/3/4 causal LM, composed from mf-ext's shared blocks (``mf_ext.modules``).

The network of HF transformers' ``GlmForCausalLM`` and THUDM's ChatGLM: RMSNorm pre-norm blocks, grouped-query
attention with a fused ``[q; k; v]`` projection carrying biases, rotary on the first ``partial_rotary_factor`` of each
head with interleaved pairs (channel ``2i`` with ``2i + 1``), SwiGLU with a fused ``[gate; up]`` projection.

Parameter names are those of MindFormers' ``ChatGLM2ForConditionalGeneration`` with its default fused layout
(``transformer.embedding.embedding_weight``, ``transformer.encoder.layers.{i}.self_attention.query_key_value`` ...),
so a checkpoint written by MindFormers' own GLM converter loads here. Runs with plain MindSpore ops on CPU and
Ascend, PyNative and graph mode; the static KV cache and ``generate()`` come from ``CausalLM``.
"""

from __future__ import annotations

from mf_ext.modules import DecoderSpec, RopeConfig
from mf_ext.modules.causal_lm import CausalLM

from .glm4_config import Glm4Config

__all__ = ["Glm4ForCausalLM", "glm4_spec"]

# shared blocks' default (MindFormers Llama) names -> MindFormers' ChatGLM2 names
PARAM_RENAMES = (
    (r"^model\.tok_embeddings\.embedding_weight$", "transformer.embedding.embedding_weight"),
    (r"^model\.norm_out\.", "transformer.encoder.final_layernorm."),
    (r"^model\.layers\.", "transformer.encoder.layers."),
    (r"\.attention_norm\.", ".input_layernorm."),
    (r"\.attention\.w_qkv\.", ".self_attention.query_key_value."),
    (r"\.attention\.wo\.", ".self_attention.dense."),
    (r"\.ffn_norm\.", ".post_attention_layernorm."),
    (r"\.feed_forward\.w_gate_hidden\.", ".mlp.dense_h_to_4h."),
    (r"\.feed_forward\.w2\.", ".mlp.dense_4h_to_h."),
    (r"^lm_head\.", "transformer.output_layer."),
)


def glm4_spec(config: Glm4Config) -> DecoderSpec:
    """GLM: fused stacked q/k/v with biases, partial interleaved rotary, fused [gate; up] SwiGLU, RMSNorm."""
    return DecoderSpec(
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.n_kv_heads,
        head_dim=config.head_dim,
        vocab_size=config.vocab_size,
        intermediate_size=config.intermediate_size,
        qkv_bias=config.qkv_has_bias,
        qkv_concat=True,
        qkv_layout="stacked",
        ffn_concat=True,
        ffn_concat_layout="halves",
        rope=RopeConfig.from_hf(
            config.head_dim,
            config.theta,
            None,
            config.max_position_embedding,
            partial_rotary_factor=config.partial_rotary_factor,
            style="interleaved",
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


class Glm4ForCausalLM(CausalLM):
    """GLM-2/3/4 causal LM (see ``mf_ext.modules.CausalLM`` for inputs and outputs)."""

    config_class = Glm4Config
    base_model_prefix = "glm4"
    PARAM_RENAMES = PARAM_RENAMES

    @classmethod
    def decoder_spec(cls, config: Glm4Config) -> DecoderSpec:
        return glm4_spec(config)
