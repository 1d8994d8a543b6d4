"""HF ``config.json`` (``MixtralForCausalLM``) <-> MindFormers ``model_config``: the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers): the config class, the weight spec (``ms_to_hf`` from a YAML)
and ``mf-ext migrate`` all use them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "to_hf_config", "to_model_config"]

# model_config keys that describe the architecture (what --convert takes from config.json)
ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "n_kv_heads",
    "head_dim",
    "intermediate_size",
    "num_experts",
    "num_experts_per_tok",
    "vocab_size",
    "rms_norm_eps",
    "theta",
    "rope_scaling",
    "sliding_window",
    "max_position_embedding",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def to_model_config(hf: dict) -> dict[str, Any]:
    """``model_config`` architecture keys for an HF Mixtral ``config.json`` dict; ``ValueError`` naming the key for
    what the model does not compute."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "mixtral") != "mixtral":
        raise ValueError(
            f"config.json: model_type {hf.get('model_type')!r} is not a Mixtral model (expected 'mixtral')"
        )
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    return {
        "hidden_size": hidden,
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hidden // heads,
        "intermediate_size": hf.get("intermediate_size", 14336),
        "num_experts": hf.get("num_local_experts", 8),
        "num_experts_per_tok": hf.get("num_experts_per_tok", 2),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-5),
        "theta": hf.get("rope_theta", 1e6),
        "rope_scaling": hf.get("rope_scaling"),
        "sliding_window": hf.get("sliding_window"),
        "max_position_embedding": hf.get("max_position_embeddings", 32768),
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``MixtralConfig`` dict (``config.json`` content) for a ``model_config`` mapping."""
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    out = {
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or hidden // heads,
        "num_local_experts": mc["num_experts"],
        "num_experts_per_tok": mc.get("num_experts_per_tok", 2),
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-5),
        "rope_theta": float(mc.get("theta", 1e6)),
        "rope_scaling": mc.get("rope_scaling"),
        "sliding_window": mc.get("sliding_window"),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 32768),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "router_aux_loss_coef": mc.get("router_aux_loss_coef", 0.001),
        "output_router_logits": bool(mc.get("output_router_logits", False)),
    }
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if mc.get(k) is not None:
            out[k] = mc[k]
    return out
