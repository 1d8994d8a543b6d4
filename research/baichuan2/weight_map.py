"""Baichuan2 weight mapping: the Hub checkpoint's names <-> MindFormers names, as data.

Baichuan2 (``modeling_baichuan.py`` of baichuan-inc/Baichuan2-7B-Base and -13B-Base): ``self_attn.W_pack`` holds
q, k and v stacked (``[q; k; v]``, each ``hidden`` rows), ``self_attn.o_proj``, ``mlp.gate_proj/up_proj/down_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``model.embed_tokens``, ``model.norm`` and the NormHead's raw
``lm_head.weight`` (normalised by the model at run time, so carried over unchanged). MindFormers' names are Llama's
(``attention.wq/wk/wv/wo``, ``feed_forward.w1/w3/w2``, ``model.norm_out``), as MindFormers' own Baichuan2 converter
writes them; with the ``qkv_concat`` option ``W_pack`` is kept whole as ``attention.w_qkv`` (stacked layout).
"""

from __future__ import annotations

from mf_ext.convert.spec import Concat, Drop, Option, Rename, Spec, Split

from .hf_config import to_hf_config as hf_config_from_ms

LY = "model.layers.{L}."
A, M = LY + "self_attn.", LY + "mlp."
MA, MF = LY + "attention.", LY + "feed_forward."
H = ("hidden", "hidden")
UP, DOWN = ("inter", "hidden"), ("hidden", "inter")

QKV_CONCAT = Option(
    default=False,
    detect=lambda names: any(".attention.w_qkv." in n for n in names),
    help="keep W_pack whole as attention.w_qkv ([q; k; v] stacked)",
)

RULES = (
    Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "lm_head.weight",
        "tied to model.embed_tokens.weight",
        when="tie_word_embeddings",
        same_as="model.embed_tokens.weight",
    ),  # fmt: skip
    Split(
        A + "W_pack.weight",
        (MA + "wq.weight", MA + "wk.weight", MA + "wv.weight"),
        (H, H, H),
        Concat(),
        unless="qkv_concat",
    ),  # fmt: skip
    Rename(A + "W_pack.weight", MA + "w_qkv.weight", ("3*hidden", "hidden"), when="qkv_concat"),
    Rename(A + "o_proj.weight", MA + "wo.weight", H),
    Drop(A + "rotary_emb.inv_freq", "recomputed from the rotary base, not a weight"),
    Rename(M + "gate_proj.weight", MF + "w1.weight", UP),
    Rename(M + "up_proj.weight", MF + "w3.weight", UP),
    Rename(M + "down_proj.weight", MF + "w2.weight", DOWN),
    Rename(LY + "input_layernorm.weight", LY + "attention_norm.weight", ("hidden",)),
    Rename(LY + "post_attention_layernorm.weight", LY + "ffn_norm.weight", ("hidden",)),
)


def dims(cfg: dict) -> dict[str, int]:
    return {
        "layers": cfg["num_hidden_layers"],
        "hidden": cfg["hidden_size"],
        "inter": cfg["intermediate_size"],
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    return {"tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False))}


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="baichuan2",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"qkv_concat": QKV_CONCAT},
)
