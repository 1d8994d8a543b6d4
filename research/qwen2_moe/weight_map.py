"""Qwen2-MoE weight mapping: HF names <-> MindFormers names, as data (both converters derive from ``SPEC``).

Attention as Llama with q/k/v biases (``qkv_bias``). Per layer (HF's rule, ``decoder_sparse_step`` /
``mlp_only_layers``): a dense SwiGLU (``feed_forward.w1/w2/w3``) or an MoE block under MindFormers' Llama MoE names
with a shared expert (``LlamaFeedForwardWithMoE``): router ``feed_forward.routed_experts.router.dense.weight``
``(E, hidden)``, experts stacked over ``{E}`` ``feed_forward.routed_experts.ffn.w1/w3`` ``(E, moe_inter, hidden)``
(gate / up) and ``ffn.w2`` ``(E, hidden, moe_inter)`` (down), streamed one expert at a time; the shared expert
``feed_forward.shared_experts.w1/w2/w3`` and its sigmoid gate ``feed_forward.shared_experts_gate.weight``
``(1, hidden)``. Option ``mcore``: MindFormers mcore's flattened
grouped-expert layout (``mlp.experts.weight1`` = per expert ``[gate^T | up^T]``, ``weight2`` = per expert
``down^T``).
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Option, Rename, Spec, Stack, every_nth_layer, mcore_experts, negate

from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
M = "model.layers.{L}.mlp."
X = M + "experts.{E}."
MA = "model.layers.{L}.attention."
MF = "model.layers.{L}.feed_forward."
R = MF + "routed_experts."
S = M + "shared_expert."

SPARSE = every_nth_layer("decoder_sparse_step", "mlp_only_layers")
DENSE = negate(SPARSE)
UP, DOWN = ("moe_inter", "hidden"), ("hidden", "moe_inter")
SHARED_UP = ("shared_inter", "hidden")

MCORE = Option(
    default=False,
    detect=lambda names: any(n.endswith(".experts.weight1") for n in names),
    help="MindFormers mcore grouped-expert layout: mlp.experts.weight1 = per expert [gate^T | up^T], weight2 = down^T",
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
    Rename(A + "q_proj.bias", MA + "wq.bias", ("heads*head_dim",), when="qkv_bias"),
    Rename(A + "k_proj.bias", MA + "wk.bias", ("kv_heads*head_dim",), when="qkv_bias"),
    Rename(A + "v_proj.bias", MA + "wv.bias", ("kv_heads*head_dim",), when="qkv_bias"),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    # dense layers
    Rename(M + "gate_proj.weight", MF + "w1.weight", ("inter", "hidden"), layers=DENSE),
    Rename(M + "up_proj.weight", MF + "w3.weight", ("inter", "hidden"), layers=DENSE),
    Rename(M + "down_proj.weight", MF + "w2.weight", ("hidden", "inter"), layers=DENSE),
    # MoE layers
    Rename(M + "gate.weight", R + "router.dense.weight", ("experts", "hidden"), layers=SPARSE),
    Stack(X + "gate_proj.weight", R + "ffn.w1.weight", UP, layers=SPARSE, unless="mcore"),
    Stack(X + "up_proj.weight", R + "ffn.w3.weight", UP, layers=SPARSE, unless="mcore"),
    Stack(X + "down_proj.weight", R + "ffn.w2.weight", DOWN, layers=SPARSE, unless="mcore"),
    Rename(S + "gate_proj.weight", MF + "shared_experts.w1.weight", SHARED_UP, layers=SPARSE),
    Rename(S + "up_proj.weight", MF + "shared_experts.w3.weight", SHARED_UP, layers=SPARSE),
    Rename(S + "down_proj.weight", MF + "shared_experts.w2.weight", ("hidden", "shared_inter"), layers=SPARSE),
    Rename(M + "shared_expert_gate.weight", MF + "shared_experts_gate.weight", (1, "hidden"), layers=SPARSE),
    *mcore_experts(
        X + "gate_proj.weight",
        X + "up_proj.weight",
        X + "down_proj.weight",
        M + "experts.weight1",
        M + "experts.weight2",
        up_shape=UP,
        down_shape=DOWN,
        layers=SPARSE,
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
        "moe_inter": cfg["moe_intermediate_size"],
        "experts": cfg["num_experts"],
        "shared_inter": cfg["shared_expert_intermediate_size"],
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    return {
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "qkv_bias": bool(cfg.get("qkv_bias", True)),
    }


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="qwen2_moe",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"mcore": MCORE},
)
