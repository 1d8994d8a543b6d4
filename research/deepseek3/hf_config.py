"""HF ``config.json`` (``DeepseekV3ForCausalLM``) <-> MindFormers ``model_config``: the one place this mapping lives.

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
    "intermediate_size",
    "moe_intermediate_size",
    "vocab_size",
    "rms_norm_eps",
    "theta",
    "rope_scaling",
    "max_position_embedding",
    "tie_word_embeddings",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "attention_bias",
    "n_routed_experts",
    "n_shared_experts",
    "num_experts_per_tok",
    "first_k_dense_replace",
    "n_group",
    "topk_group",
    "routed_scaling_factor",
    "norm_topk_prob",
    "rope_interleave",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

# DeepSeek's own config.json keys HF's DeepseekV3Config keeps as extras: the one routing this model computes
ROUTING = {"scoring_func": "sigmoid", "topk_method": "noaux_tc"}


def to_model_config(hf: dict) -> dict[str, Any]:
    """``model_config`` architecture keys for an HF DeepSeek-V3 ``config.json`` dict; ``ValueError`` naming the key
    for what the model does not compute."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "deepseek_v3") != "deepseek_v3":
        raise ValueError(
            f"config.json: model_type {hf.get('model_type')!r} is not a DeepSeek-V3 model (expected 'deepseek_v3')"
        )
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    for key, want in ROUTING.items():
        if hf.get(key, want) != want:
            raise ValueError(f"config.json: {key} {hf[key]!r} is not supported (expected {want!r})")
    heads = hf["num_attention_heads"]
    if (hf.get("num_key_value_heads") or heads) != heads:
        raise ValueError(
            f"config.json: num_key_value_heads {hf['num_key_value_heads']!r} must equal num_attention_heads "
            f"{heads!r} (multi-head latent attention)"
        )
    return {
        "hidden_size": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "intermediate_size": hf.get("intermediate_size", 18432),
        "moe_intermediate_size": hf.get("moe_intermediate_size", 2048),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": hf.get("rope_theta", 10000.0),
        "rope_scaling": hf.get("rope_scaling"),
        "max_position_embedding": hf.get("max_position_embeddings", 4096),
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "q_lora_rank": hf.get("q_lora_rank", 1536),
        "kv_lora_rank": hf.get("kv_lora_rank", 512),
        "qk_nope_head_dim": hf.get("qk_nope_head_dim", 128),
        "qk_rope_head_dim": hf.get("qk_rope_head_dim", 64),
        "v_head_dim": hf.get("v_head_dim", 128),
        "attention_bias": bool(hf.get("attention_bias", False)),
        "n_routed_experts": hf.get("n_routed_experts", 256),
        "n_shared_experts": hf.get("n_shared_experts", 1),
        "num_experts_per_tok": hf.get("num_experts_per_tok", 8),
        "first_k_dense_replace": hf.get("first_k_dense_replace", 3),
        "n_group": hf.get("n_group", 8),
        "topk_group": hf.get("topk_group", 4),
        "routed_scaling_factor": hf.get("routed_scaling_factor", 2.5),
        "norm_topk_prob": bool(hf.get("norm_topk_prob", True)),
        "rope_interleave": bool(hf.get("rope_interleave", True)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``DeepseekV3Config`` dict (``config.json`` content) for a ``model_config`` mapping."""
    out = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_act": "silu",
        "hidden_size": mc["hidden_size"],
        "intermediate_size": mc["intermediate_size"],
        "moe_intermediate_size": mc["moe_intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": mc["num_heads"],
        "num_key_value_heads": mc["num_heads"],
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "rope_scaling": mc.get("rope_scaling"),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 2048),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "q_lora_rank": mc.get("q_lora_rank"),
        "kv_lora_rank": mc["kv_lora_rank"],
        "qk_nope_head_dim": mc["qk_nope_head_dim"],
        "qk_rope_head_dim": mc["qk_rope_head_dim"],
        "v_head_dim": mc["v_head_dim"],
        "attention_bias": bool(mc.get("attention_bias", False)),
        "n_routed_experts": mc["n_routed_experts"],
        "n_shared_experts": mc.get("n_shared_experts"),
        "num_experts_per_tok": mc["num_experts_per_tok"],
        "first_k_dense_replace": mc.get("first_k_dense_replace", 3),
        "n_group": mc.get("n_group"),
        "topk_group": mc.get("topk_group"),
        "routed_scaling_factor": mc.get("routed_scaling_factor", 2.5),
        "norm_topk_prob": bool(mc.get("norm_topk_prob", True)),
        "rope_interleave": bool(mc.get("rope_interleave", True)),
    }
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if mc.get(k) is not None:
            out[k] = mc[k]
    return out
