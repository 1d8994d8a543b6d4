"""InternLM2 / InternLM weight mapping: the Hub checkpoints' names <-> MindFormers names, as data.

Both converters of this folder are derived from ``SPEC``. ``{L}`` is the layer index.

* InternLM2 (``modeling_internlm2.py`` of internlm/internlm2-chat-7b): ``model.tok_embeddings``, one fused
  ``attention.wqkv`` whose rows are, per key/value head, the group's query heads, then its key head, then its value
  head (``QkvGroups("kv_heads")``), ``attention.wo``, ``feed_forward.w1`` (gate) / ``w3`` (up) / ``w2`` (down),
  ``attention_norm``, ``ffn_norm``, ``model.norm``, ``output``.
* InternLM (config ``model_type: internlm``): HF Llama's names (``self_attn.q_proj`` ...) with q/k/v/o biases.
* MindFormers' names: Llama's (``attention.wq/wk/wv/wo``, ``model.norm_out``, ``lm_head``); with the ``qkv_concat``
  option the fused projection is MindFormers' InternLM2 ``attention.w`` -- InternLM2's own ``wqkv`` rows unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from mf_ext.convert.spec import Drop, Fuse, Option, QkvGroups, Rename, Spec, Split

from .hf_config import to_hf_config as hf_config_from_ms

LY = "model.layers.{L}."
MA, MF = LY + "attention.", LY + "feed_forward."
A, M = LY + "self_attn.", LY + "mlp."

Q, KV = ("heads*head_dim", "hidden"), ("kv_heads*head_dim", "hidden")
QB, KVB = ("heads*head_dim",), ("kv_heads*head_dim",)
UP, DOWN = ("inter", "hidden"), ("hidden", "inter")
QKV = ("heads*head_dim+2*kv_heads*head_dim", "hidden")
QKVB = ("heads*head_dim+2*kv_heads*head_dim",)
GROUPS = QkvGroups("kv_heads")

QKV_CONCAT = Option(
    default=False,
    detect=lambda names: any(".attention.w." in n for n in names),
    help="keep q,k,v fused as attention.w (MindFormers' InternLM2 layout: rows grouped per key/value head)",
)

_INTERNLM2 = (
    Rename("model.tok_embeddings.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("output.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "output.weight",
        "tied to model.tok_embeddings.weight",
        when="tie_word_embeddings",
        same_as="model.tok_embeddings.weight",
    ),  # fmt: skip
    Split(
        MA + "wqkv.weight",
        (MA + "wq.weight", MA + "wk.weight", MA + "wv.weight"),
        (Q, KV, KV),
        GROUPS,
        unless="qkv_concat",
    ),  # fmt: skip
    Rename(MA + "wqkv.weight", MA + "w.weight", QKV, when="qkv_concat"),
    Split(
        MA + "wqkv.bias",
        (MA + "wq.bias", MA + "wk.bias", MA + "wv.bias"),
        (QB, KVB, KVB),
        GROUPS,
        when="bias",
        unless="qkv_concat",
    ),  # fmt: skip
    Rename(MA + "wqkv.bias", MA + "w.bias", QKVB, when="bias+qkv_concat"),
    Rename(MA + "wo.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename(MA + "wo.bias", MA + "wo.bias", ("hidden",), when="bias"),
    Rename(MF + "w1.weight", MF + "w1.weight", UP),
    Rename(MF + "w3.weight", MF + "w3.weight", UP),
    Rename(MF + "w2.weight", MF + "w2.weight", DOWN),
    Rename(LY + "attention_norm.weight", LY + "attention_norm.weight", ("hidden",)),
    Rename(LY + "ffn_norm.weight", LY + "ffn_norm.weight", ("hidden",)),
)

_INTERNLM = (
    Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "lm_head.weight",
        "tied to model.embed_tokens.weight",
        when="tie_word_embeddings",
        same_as="model.embed_tokens.weight",
    ),  # fmt: skip
    Rename(A + "q_proj.weight", MA + "wq.weight", Q, unless="qkv_concat"),
    Rename(A + "k_proj.weight", MA + "wk.weight", KV, unless="qkv_concat"),
    Rename(A + "v_proj.weight", MA + "wv.weight", KV, unless="qkv_concat"),
    Fuse(
        (A + "q_proj.weight", A + "k_proj.weight", A + "v_proj.weight"),
        MA + "w.weight",
        (Q, KV, KV),
        GROUPS,
        when="qkv_concat",
    ),  # fmt: skip
    Rename(A + "q_proj.bias", MA + "wq.bias", QB, when="bias", unless="qkv_concat"),
    Rename(A + "k_proj.bias", MA + "wk.bias", KVB, when="bias", unless="qkv_concat"),
    Rename(A + "v_proj.bias", MA + "wv.bias", KVB, when="bias", unless="qkv_concat"),
    Fuse(
        (A + "q_proj.bias", A + "k_proj.bias", A + "v_proj.bias"),
        MA + "w.bias",
        (QB, KVB, KVB),
        GROUPS,
        when="bias+qkv_concat",
    ),  # fmt: skip
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename(A + "o_proj.bias", MA + "wo.bias", ("hidden",), when="bias"),
    Drop(A + "rotary_emb.inv_freq", "recomputed from the rotary base, not a weight"),
    Rename(M + "gate_proj.weight", MF + "w1.weight", UP),
    Rename(M + "up_proj.weight", MF + "w3.weight", UP),
    Rename(M + "down_proj.weight", MF + "w2.weight", DOWN),
    Rename(LY + "input_layernorm.weight", LY + "attention_norm.weight", ("hidden",)),
    Rename(LY + "post_attention_layernorm.weight", LY + "ffn_norm.weight", ("hidden",)),
)


def _only(rules: tuple, term: str) -> tuple:
    """The rules, each also conditioned on ``term`` (``"internlm"`` or ``"!internlm"``: which layout is read)."""
    return tuple(replace(r, when=term if r.when is None else f"{r.when}+{term}") for r in rules)


RULES = _only(_INTERNLM2, "!internlm") + _only(_INTERNLM, "internlm")


def dims(cfg: dict) -> dict[str, int]:
    heads = cfg["num_attention_heads"]
    return {
        "layers": cfg["num_hidden_layers"],
        "hidden": cfg["hidden_size"],
        "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg["hidden_size"] // heads,
        "inter": cfg["intermediate_size"],
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    v1 = cfg.get("model_type") == "internlm"
    return {
        "internlm": v1,
        "bias": bool(cfg.get("bias", v1)),
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
    }


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="internlm2",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"qkv_concat": QKV_CONCAT},
)
