"""Llama-family weight mapping (Llama 2 / 3 / 3.1, CodeLlama, Yi): HF names <-> MindFormers names, as data.

Both converters of this folder (``convert_weight.py`` hf->ms, ``convert_reversed.py`` ms->hf) are derived from
``SPEC``; the engine in :mod:`mf_ext.convert` executes it. ``{L}`` is the layer index.

* ``qkv_concat`` option: q/k/v -> ``attention.w_qkv`` packed per KV group and gate/up -> ``feed_forward.
  w_gate_hidden`` with alternating rows -- the layout MindFormers' ``LlamaForCausalLM(qkv_concat=True)`` splits
  (reshape to ``(n_kv_heads, (n_rep + 2) * head_dim)`` / to ``(ffn_hidden, 2)``).
* ``tie_word_embeddings`` (from config.json): no ``lm_head.weight`` in the output; one in the input is dropped.
* HF q/k already use the rotate-half layout MindFormers' rotary embedding expects: no permutation. Meta's
  ``consolidated.*.pth`` interleaves rotary pairs, so its wq/wk get :class:`RotaryPermute`.
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Format, Fuse, Option, QkvGroups, Rename, RotaryPermute, RowInterleave, Spec

from .hf_config import ffn_size
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
    # MindFormers' own converter writes the tied lm_head out anyway; the HF side gets it from the tie
    Drop(
        "lm_head.weight",
        "tied to model.tok_embeddings.embedding_weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="model.tok_embeddings.embedding_weight",
        side="ms",
    ),
    # attention
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
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta / rope_scaling, not a weight"),
    # MLP: w1 = gate, w2 = down, w3 = up
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
    # norms
    Rename("model.layers.{L}.input_layernorm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",)),
    Rename("model.layers.{L}.post_attention_layernorm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",)),
)

# Meta's original release format (consolidated.NN.pth + params.json), straight to MindFormers names.
META_RULES = (
    Rename("tok_embeddings.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("output.weight", "lm_head.weight", ("vocab", "hidden")),
    Drop("rope.freqs", "recomputed from rope_theta, not a weight"),
    Rename("layers.{L}.attention.wq.weight", MA + "wq.weight", Q, op=RotaryPermute("heads")),
    Rename("layers.{L}.attention.wk.weight", MA + "wk.weight", KV, op=RotaryPermute("kv_heads")),
    Rename("layers.{L}.attention.wv.weight", MA + "wv.weight", KV),
    Rename("layers.{L}.attention.wo.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename("layers.{L}.feed_forward.w1.weight", MF + "w1.weight", UP),
    Rename("layers.{L}.feed_forward.w2.weight", MF + "w2.weight", ("hidden", "inter")),
    Rename("layers.{L}.feed_forward.w3.weight", MF + "w3.weight", UP),
    Rename("layers.{L}.attention_norm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",)),
    Rename("layers.{L}.ffn_norm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",)),
)

# model-parallel axis of each Meta tensor kind (None: replicated, take shard 0)
_META_AXIS = {"tok_embeddings": 1, "output": 0, "wq": 0, "wk": 0, "wv": 0, "wo": 1, "w1": 0, "w2": 1, "w3": 0}


def meta_shard_axis(name: str) -> int | None:
    parts = name.split(".")
    key = parts[-2] if len(parts) >= 2 else parts[0]
    return _META_AXIS.get(key)


def dims(cfg: dict) -> dict[str, int]:
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
    bias = bool(cfg.get("attention_bias", False))
    return {"tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)), "attention_bias": bias}


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


def hf_config_from_meta(params: dict, shapes: dict[str, tuple[int, ...]]) -> dict:
    """HF ``config.json`` equivalent of Meta's ``params.json`` (Llama 2 writes ``vocab_size: -1``: take the
    embedding's rows instead)."""
    dim = params["dim"]
    vocab = params.get("vocab_size", -1)
    if vocab is None or vocab <= 0:
        vocab = shapes["tok_embeddings.weight"][0]
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        # the w1 rows are authoritative (Meta's and MindFormers' sizing formulas differ in rounding)
        "intermediate_size": (
            shapes["layers.0.feed_forward.w1.weight"][0]
            if "layers.0.feed_forward.w1.weight" in shapes
            else ffn_size(dim, params.get("multiple_of", 256), params.get("ffn_dim_multiplier"))
        ),
        "num_hidden_layers": params["n_layers"],
        "num_attention_heads": params["n_heads"],
        "num_key_value_heads": params.get("n_kv_heads") or params["n_heads"],
        "vocab_size": vocab,
        "rms_norm_eps": params.get("norm_eps", 1e-5),
        "rope_theta": params.get("rope_theta", 10000.0),
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    }
    return cfg


SPEC = Spec(
    name="llama",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"qkv_concat": QKV_CONCAT},
    formats={
        "meta": Format(
            rules=META_RULES,
            files="consolidated.*.pth",
            config=hf_config_from_meta,
            config_file="params.json",
            shard_axis=meta_shard_axis,
        )
    },
)
