"""HF ``config.json`` (``Qwen3MoeForCausalLM``) <-> MindFormers ``model_config``: the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers): the config class, the weight spec (``ms_to_hf`` from a YAML)
and ``mf-ext migrate`` all use them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "is_sparse_layer", "to_hf_config", "to_model_config"]

# model_config keys that describe the architecture (what --convert takes from config.json)
ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "n_kv_heads",
    "head_dim",
    "intermediate_size",
    "moe_intermediate_size",
    "num_experts",
    "num_experts_per_tok",
    "norm_topk_prob",
    "decoder_sparse_step",
    "mlp_only_layers",
    "attention_bias",
    "vocab_size",
    "rms_norm_eps",
    "theta",
    "rope_scaling",
    "max_position_embedding",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def is_sparse_layer(layer: int, num_experts: int, decoder_sparse_step: int, mlp_only_layers) -> bool:
    """HF Qwen3-MoE's rule: layer ``i`` is MoE iff experts exist, ``(i + 1) % decoder_sparse_step == 0`` and ``i`` is
    not in ``mlp_only_layers``; every other layer has a dense MLP of ``intermediate_size``."""
    step = int(decoder_sparse_step or 1)
    return num_experts > 0 and (layer + 1) % step == 0 and layer not in set(mlp_only_layers or ())


def to_model_config(hf: dict) -> dict[str, Any]:
    """``model_config`` architecture keys for an HF Qwen3-MoE ``config.json`` dict; ``ValueError`` naming the key
    for what the model does not compute."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "qwen3_moe") != "qwen3_moe":
        raise ValueError(f"config.json: model_type {hf.get('model_type')!r} is not 'qwen3_moe'")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    if hf.get("use_sliding_window", False):
        raise ValueError(
            "config.json: use_sliding_window=true is not supported (the model attends to the whole context)"
        )
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    return {
        "hidden_size": hidden,
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hidden // heads,
        "intermediate_size": hf.get("intermediate_size", 6144),
        "moe_intermediate_size": hf.get("moe_intermediate_size", 768),
        "num_experts": hf.get("num_experts", 128),
        "num_experts_per_tok": hf.get("num_experts_per_tok", 8),
        "norm_topk_prob": bool(hf.get("norm_topk_prob", False)),
        "decoder_sparse_step": hf.get("decoder_sparse_step", 1),
        "mlp_only_layers": list(hf.get("mlp_only_layers") or []),
        "attention_bias": bool(hf.get("attention_bias", False)),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": hf.get("rope_theta", 10000.0),
        "rope_scaling": hf.get("rope_scaling"),
        "max_position_embedding": hf.get("max_position_embeddings", 32768),
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``Qwen3MoeConfig`` dict (``config.json`` content) for a ``model_config`` mapping."""
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    out = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": mc["intermediate_size"],
        "moe_intermediate_size": mc["moe_intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or hidden // heads,
        "num_experts": mc["num_experts"],
        "num_experts_per_tok": mc["num_experts_per_tok"],
        "norm_topk_prob": bool(mc.get("norm_topk_prob", False)),
        "decoder_sparse_step": mc.get("decoder_sparse_step", 1),
        "mlp_only_layers": list(mc.get("mlp_only_layers") or []),
        "attention_bias": bool(mc.get("attention_bias", False)),
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "rope_scaling": mc.get("rope_scaling"),
        "use_sliding_window": False,
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 32768),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "router_aux_loss_coef": mc.get("router_aux_loss_coef", 0.001),
        "output_router_logits": bool(mc.get("output_router_logits", False)),
    }
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if mc.get(k) is not None:
            out[k] = mc[k]
    return out
