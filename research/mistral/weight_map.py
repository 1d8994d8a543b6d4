"""Mistral weight mapping: HF ``MistralForCausalLM`` names <-> MindFormers' Llama names, as data.

A Mistral checkpoint has Llama's tensors (sliding-window attention adds no weight): q/k/v/o without biases, SwiGLU
gate/up/down (MindFormers' ``w1``/``w3``/``w2``), RMSNorms, an untied ``lm_head`` (a tied one is dropped). HF q/k
already use the rotate-half layout our rotary expects: no permutation. ``{L}`` is the layer index.
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Rename, Spec

from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
M = "model.layers.{L}.mlp."
MA = "model.layers.{L}.attention."
MF = "model.layers.{L}.feed_forward."
UP = ("inter", "hidden")

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
    Rename(A + "q_proj.weight", MA + "wq.weight", ("heads*head_dim", "hidden")),
    Rename(A + "k_proj.weight", MA + "wk.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "v_proj.weight", MA + "wv.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    Rename(M + "gate_proj.weight", MF + "w1.weight", UP),
    Rename(M + "up_proj.weight", MF + "w3.weight", UP),
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
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
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
    name="mistral",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
)
