"""HF ``config.json`` <-> MindFormers ``model_config`` for the Qwen3 family: the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers). ``model_config`` keys follow MindFormers' ``LlamaConfig``
(``num_layers``, ``n_kv_heads``, ``theta`` ...) plus ``head_dim`` (Qwen3 sets it explicitly: 128 for every size, not
``hidden_size / num_heads``) and ``attention_bias`` (q/k/v/o biases; false in the released models).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ARCH_KEYS", "to_model_config", "to_hf_config", "check_model_config", "normalize_rope_scaling"]

ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "n_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "rms_norm_eps",
    "theta",
    "rope_scaling",
    "max_position_embedding",
    "tie_word_embeddings",
    "attention_bias",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

# HF rope_type names this family's model computes ("llama3" is HF's name for the smoothed-band scaling)
SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")
_ROPE_NEEDS = {
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}
MODEL_TYPES = ("qwen3",)
ARCHITECTURE = "Qwen3ForCausalLM"
DEFAULT_HEAD_DIM = 128  # HF Qwen3Config's default


def normalize_rope_scaling(rope_scaling: dict | None, where: str = "rope_scaling") -> dict | None:
    """``rope_scaling`` as ``{"type": kind, <params>}`` or ``None`` (default rotary); ``ValueError`` if unsupported."""
    if rope_scaling is None:
        return None
    if not isinstance(rope_scaling, dict):
        raise ValueError(f"{where}: expected a mapping or null, got {rope_scaling!r}")
    params = {k: v for k, v in rope_scaling.items() if k not in ("rope_type", "type")}
    kind = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
    if kind not in SUPPORTED_ROPE_TYPES:
        raise ValueError(f"{where}.rope_type: {kind!r} is not supported; expected one of {SUPPORTED_ROPE_TYPES}")
    if kind == "default":
        return None
    missing = [k for k in _ROPE_NEEDS[kind] if k not in params]
    if missing:
        raise ValueError(f"{where}: rope_type {kind!r} needs keys {missing}, got {rope_scaling!r}")
    return {"type": kind, **params}


def check_model_config(mc: dict) -> list[tuple[str, str]]:
    """Problems of a YAML ``model_config`` only this family knows about (for ``mf-ext validate``)."""
    try:
        normalize_rope_scaling(mc.get("rope_scaling"))
    except ValueError as exc:
        return [("rope_scaling", str(exc).removeprefix("rope_scaling: ").removeprefix("rope_scaling.rope_type: "))]
    return []


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for an HF Qwen3 ``config.json`` dict.

    Raises ``ValueError`` naming the HF key for what the model does not compute (a non-SiLU activation, sliding-window
    attention, an unsupported ``rope_scaling``, another ``model_type``).
    """
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type", "qwen3")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"config.json: model_type {model_type!r} is not a Qwen3 model (expected 'qwen3')")
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size")
    missing = [k for k in required if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    if hf.get("use_sliding_window", False):
        raise ValueError(
            "config.json: use_sliding_window=true is not supported (this model attends to the whole context; "
            "expected false)"
        )
    heads = hf["num_attention_heads"]
    return {
        "hidden_size": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or DEFAULT_HEAD_DIM,
        "intermediate_size": hf["intermediate_size"],
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": hf.get("rope_theta", 10000.0),
        "rope_scaling": normalize_rope_scaling(hf.get("rope_scaling"), "config.json: rope_scaling"),
        "max_position_embedding": hf.get("max_position_embeddings", 32768),
        "tie_word_embeddings": hf.get("tie_word_embeddings", False),
        "attention_bias": bool(hf.get("attention_bias", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``Qwen3Config`` dict (``config.json`` content) for a ``model_config`` mapping."""
    if mc.get("intermediate_size") is None:
        raise ValueError("model_config.intermediate_size: expected an int, got None")
    heads = mc["num_heads"]
    rope = normalize_rope_scaling(mc.get("rope_scaling"), "model_config.rope_scaling")
    if rope is not None:
        rope = {"rope_type": rope["type"], **{k: v for k, v in rope.items() if k != "type"}}
    out = {
        "architectures": [ARCHITECTURE],
        "model_type": "qwen3",
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "attention_bias": bool(mc.get("attention_bias", False)),
        "hidden_size": mc["hidden_size"],
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or DEFAULT_HEAD_DIM,
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "rope_theta": float(mc.get("theta", 1000000.0)),
        "rope_scaling": copy.deepcopy(rope),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 40960),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "use_sliding_window": False,
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
