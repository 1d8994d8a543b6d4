"""Mixtral weight mapping: HF names <-> MindFormers names, as data (both converters derive from ``SPEC``).

MindSpore layout = MindFormers' research Mixtral (its Llama MoE cells): attention and norms as Llama, router
``feed_forward.router.dense.weight`` ``(E, hidden)``, experts stacked over ``{E}`` as ``feed_forward.ffn.w1/w3``
``(E, inter, hidden)`` (HF ``w1`` gate / ``w3`` up) and ``feed_forward.ffn.w2`` ``(E, hidden, inter)`` (HF ``w2``
down), streamed one expert at a time, in expert-index order (MindFormers' own converter stacks in file order, which
is lexicographic: expert 10 before expert 2). Option ``mcore``: MindFormers mcore's flattened grouped-expert layout
(``mlp.experts.weight1`` = per expert ``[w1^T | w3^T]``, ``weight2`` = per expert ``w2^T``).
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Option, Rename, Spec, Stack, mcore_experts

from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
MOE = "model.layers.{L}.block_sparse_moe."
X = MOE + "experts.{E}."
MA = "model.layers.{L}.attention."
MF = "model.layers.{L}.feed_forward."

UP, DOWN = ("inter", "hidden"), ("hidden", "inter")

MCORE = Option(
    default=False,
    detect=lambda names: any(n.endswith(".experts.weight1") for n in names),
    help="MindFormers mcore grouped-expert layout: mlp.experts.weight1 = per expert [w1^T | w3^T], weight2 = w2^T",
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
    Rename(A + "q_proj.weight", MA + "wq.weight", ("heads*head_dim", "hidden")),
    Rename(A + "k_proj.weight", MA + "wk.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "v_proj.weight", MA + "wv.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    Rename(MOE + "gate.weight", MF + "router.dense.weight", ("experts", "hidden")),
    Stack(X + "w1.weight", MF + "ffn.w1.weight", UP, unless="mcore"),
    Stack(X + "w3.weight", MF + "ffn.w3.weight", UP, unless="mcore"),
    Stack(X + "w2.weight", MF + "ffn.w2.weight", DOWN, unless="mcore"),
    *mcore_experts(
        X + "w1.weight",
        X + "w3.weight",
        X + "w2.weight",
        "model.layers.{L}.mlp.experts.weight1",
        "model.layers.{L}.mlp.experts.weight2",
        up_shape=UP,
        down_shape=DOWN,
        when="mcore",
    ),
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
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "inter": cfg["intermediate_size"],
        "experts": cfg["num_local_experts"],
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
    name="mixtral",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"mcore": MCORE},
)
