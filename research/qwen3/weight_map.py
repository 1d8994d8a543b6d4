"""Qwen3 weight mapping: HF names <-> MindFormers llama-style names, as data.

Qwen3 is a Llama-architecture decoder with a per-head RMSNorm of q and k (``self_attn.q_norm`` / ``k_norm``, one
``head_dim`` weight shared by all heads, applied before rotary), an explicit ``head_dim``, and optional q/k/v/o biases
(``attention_bias``, off in the released models). MindSpore names are MindFormers' Llama names plus
``attention.q_norm`` / ``attention.k_norm``; with ``qkv_concat`` q/k/v (and their biases) are packed per KV group into
``attention.w_qkv`` and gate/up into ``feed_forward.w_gate_hidden`` (alternating rows).
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Fuse, Option, QkvGroups, Rename, RowInterleave, Spec

from .hf_config import DEFAULT_HEAD_DIM
from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
M = "model.layers.{L}.mlp."
MA = "model.layers.{L}.attention."
MF = "model.layers.{L}.feed_forward."

Q = ("heads*head_dim", "hidden")
KV = ("kv_heads*head_dim", "hidden")
QB = ("heads*head_dim",)
KVB = ("kv_heads*head_dim",)
UP = ("inter", "hidden")


def _fused(names) -> bool:
    return any(".w_qkv." in n or ".w_gate_hidden." in n for n in names)


QKV_CONCAT = Option(
    default=False,
    detect=_fused,
    help="fuse q,k,v -> attention.w_qkv (per KV group) and gate,up -> feed_forward.w_gate_hidden (alternating rows)",
)

RULES = (
    Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "lm_head.weight",
        "tied to model.embed_tokens.weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="model.embed_tokens.weight",
    ),
    Drop(
        "lm_head.weight",
        "tied to model.tok_embeddings.embedding_weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="model.tok_embeddings.embedding_weight",
        side="ms",
    ),
    Rename(A + "q_proj.weight", MA + "wq.weight", Q, unless="qkv_concat"),
    Rename(A + "k_proj.weight", MA + "wk.weight", KV, unless="qkv_concat"),
    Rename(A + "v_proj.weight", MA + "wv.weight", KV, unless="qkv_concat"),
    Fuse(
        (A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"),
        MA + "w_qkv.weight",
        (Q, KV, KV),
        QkvGroups("kv_heads"),
        when="qkv_concat",
    ),
    Rename(A + "q_proj.bias", MA + "wq.bias", QB, when="attention_bias", unless="qkv_concat"),
    Rename(A + "k_proj.bias", MA + "wk.bias", KVB, when="attention_bias", unless="qkv_concat"),
    Rename(A + "v_proj.bias", MA + "wv.bias", KVB, when="attention_bias", unless="qkv_concat"),
    Fuse(
        (A + "q_proj.bias", A + "k_proj.bias", A + "v_proj.bias"),
        MA + "w_qkv.bias",
        (QB, KVB, KVB),
        QkvGroups("kv_heads"),
        when="attention_bias+qkv_concat",
    ),
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename(A + "o_proj.bias", MA + "wo.bias", ("hidden",), when="attention_bias"),
    Rename(A + "q_norm.weight", MA + "q_norm.weight", ("head_dim",)),
    Rename(A + "k_norm.weight", MA + "k_norm.weight", ("head_dim",)),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    Rename(M + "gate_proj.weight", MF + "w1.weight", UP, unless="qkv_concat"),
    Rename(M + "up_proj.weight", MF + "w3.weight", UP, unless="qkv_concat"),
    Fuse(
        (M + "gate_proj.weight", M + "up_proj.weight"),
        MF + "w_gate_hidden.weight",
        (UP, UP),
        RowInterleave(),
        when="qkv_concat",
    ),
    Rename(M + "down_proj.weight", MF + "w2.weight", ("hidden", "inter")),
    Rename("model.layers.{L}.input_layernorm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",)),
    Rename("model.layers.{L}.post_attention_layernorm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",)),
)


def dims(cfg: dict) -> dict[str, int]:
    heads = cfg["num_attention_heads"]
    return {
        "layers": cfg["num_hidden_layers"],
        "hidden": cfg["hidden_size"],
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim") or DEFAULT_HEAD_DIM,
        "inter": cfg["intermediate_size"],
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    return {
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "attention_bias": bool(cfg.get("attention_bias", False)),
    }


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="qwen3",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"qkv_concat": QKV_CONCAT},
)
