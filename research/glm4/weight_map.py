"""GLM-family weight mapping (GLM-2/3/4) as data: two source layouts -> MindFormers' ChatGLM2 names.

MindSpore names are those of MindFormers' own ``ChatGLM2ForConditionalGeneration`` with its default fused layout
(``qkv_concat: True``, ``mlp_concat: True``, ``use_rearrange_rope: False``), which its ``glm2/convert_weight.py``
writes: ``transformer.embedding.embedding_weight``, ``transformer.encoder.layers.{L}.input_layernorm``,
``self_attention.query_key_value`` (weight + bias, ``[q; k; v]`` stacked), ``self_attention.dense``,
``post_attention_layernorm``, ``mlp.dense_h_to_4h`` (``[gate; up]``), ``mlp.dense_4h_to_h``,
``transformer.encoder.final_layernorm``, ``transformer.output_layer``.

* ``SPEC`` reads HF transformers' ``GlmForCausalLM`` (``glm-4-9b-hf``): q/k/v are fused ``[q; k; v]``; HF's
  ``gate_up_proj`` already is ``[gate; up]``. Rotary pairs are interleaved in HF's GLM and in ChatGLM alike, and our
  model rotates interleaved pairs: no permutation.
* ``CHATGLM_SPEC`` reads THUDM's remote-code ChatGLM checkpoints (``chatglm2-6b``, ``chatglm3-6b``,
  ``glm-4-9b(-chat)``): the names above except ``transformer.embedding.word_embeddings.weight``; its
  ``transformer.rotary_pos_emb.inv_freq`` buffer is dropped (the model computes the frequencies).

:func:`spec_for` picks one from a ``config.json`` (``model_type: chatglm`` -> ChatGLM).
"""

from __future__ import annotations

from mf_ext.convert.spec import Concat, Drop, Fuse, Rename, Spec

from .hf_config import chatglm_to_hf, hf_to_chatglm, is_chatglm
from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
M = "model.layers.{L}.mlp."
T = "transformer.encoder.layers.{L}."

Q = ("heads*head_dim", "hidden")
KV = ("kv_heads*head_dim", "hidden")
QKV = ("heads*head_dim+2*kv_heads*head_dim", "hidden")
QB, KVB, QKVB = ("heads*head_dim",), ("kv_heads*head_dim",), ("heads*head_dim+2*kv_heads*head_dim",)
GATE_UP = ("2*inter", "hidden")
DOWN = ("hidden", "inter")

EMBED = "transformer.embedding.embedding_weight"
HEAD = "transformer.output_layer.weight"

# the MindSpore-side drop of a tied output layer, shared by both layouts
_TIED_MS = Drop(
    HEAD, "tied to the embedding (tie_word_embeddings)", when="tie_word_embeddings", same_as=EMBED, side="ms"
)

RULES = (
    Rename("model.embed_tokens.weight", EMBED, ("vocab", "hidden")),
    Rename("model.norm.weight", "transformer.encoder.final_layernorm.weight", ("hidden",)),
    Rename("lm_head.weight", HEAD, ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "lm_head.weight",
        "tied to model.embed_tokens.weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="model.embed_tokens.weight",
    ),
    _TIED_MS,
    Fuse(
        (A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"),
        T + "self_attention.query_key_value.weight",
        (Q, KV, KV),
        Concat(),
    ),
    Fuse(
        (A + "q_proj.bias", A + "k_proj.bias", A + "v_proj.bias"),
        T + "self_attention.query_key_value.bias",
        (QB, KVB, KVB),
        Concat(),
        when="attention_bias",
    ),
    Rename(A + "o_proj.weight", T + "self_attention.dense.weight", ("hidden", "heads*head_dim")),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    Rename(M + "gate_up_proj.weight", T + "mlp.dense_h_to_4h.weight", GATE_UP),
    Rename(M + "down_proj.weight", T + "mlp.dense_4h_to_h.weight", DOWN),
    Rename("model.layers.{L}.input_layernorm.weight", T + "input_layernorm.weight", ("hidden",)),
    Rename("model.layers.{L}.post_attention_layernorm.weight", T + "post_attention_layernorm.weight", ("hidden",)),
)

CHATGLM_RULES = (
    Rename("transformer.embedding.word_embeddings.weight", EMBED, ("vocab", "hidden")),
    Rename("transformer.encoder.final_layernorm.weight", "transformer.encoder.final_layernorm.weight", ("hidden",)),
    Rename(HEAD, HEAD, ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        HEAD,
        "tied to transformer.embedding.word_embeddings.weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="transformer.embedding.word_embeddings.weight",
    ),
    _TIED_MS,
    Drop("transformer.rotary_pos_emb.inv_freq", "recomputed from rope_ratio, not a weight"),
    Rename(T + "self_attention.query_key_value.weight", T + "self_attention.query_key_value.weight", QKV),
    Rename(
        T + "self_attention.query_key_value.bias",
        T + "self_attention.query_key_value.bias",
        QKVB,
        when="attention_bias",
    ),
    Rename(T + "self_attention.dense.weight", T + "self_attention.dense.weight", ("hidden", "heads*head_dim")),
    Rename(T + "mlp.dense_h_to_4h.weight", T + "mlp.dense_h_to_4h.weight", GATE_UP),
    Rename(T + "mlp.dense_4h_to_h.weight", T + "mlp.dense_4h_to_h.weight", DOWN),
    Rename(T + "input_layernorm.weight", T + "input_layernorm.weight", ("hidden",)),
    Rename(T + "post_attention_layernorm.weight", T + "post_attention_layernorm.weight", ("hidden",)),
)


def _hf(cfg: dict) -> dict:
    return chatglm_to_hf(cfg) if is_chatglm(cfg) else cfg


def dims(cfg: dict) -> dict[str, int]:
    cfg = _hf(cfg)
    heads = cfg["num_attention_heads"]
    return {
        "layers": cfg["num_hidden_layers"],
        "hidden": cfg["hidden_size"],
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "inter": cfg["intermediate_size"],
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    cfg = _hf(cfg)
    return {
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "attention_bias": bool(cfg.get("attention_bias", True)),
    }


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


def chatglm_config_from_ms(mc: dict) -> dict:
    return hf_to_chatglm(hf_config_from_ms(mc))


SPEC = Spec(
    name="glm",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
)

CHATGLM_SPEC = Spec(
    name="chatglm",
    rules=CHATGLM_RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=chatglm_config_from_ms,
)


def spec_for(hf_config: dict) -> Spec:
    """``CHATGLM_SPEC`` for a ChatGLM ``config.json`` dict, else ``SPEC``."""
    return CHATGLM_SPEC if is_chatglm(hf_config) else SPEC
