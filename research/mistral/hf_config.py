"""HF ``MistralForCausalLM`` ``config.json`` <-> MindFormers ``model_config``: the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers): the config class, the weight spec (``ms_to_hf`` from a
YAML), ``--convert`` and ``mf-ext migrate`` all use them. Field names are MindFormers' Llama names (``num_layers``,
``n_kv_heads``, ``theta``, ``max_position_embedding`` ...) plus ``sliding_window``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "MODEL_TYPES", "to_model_config", "to_hf_config", "check_model_config"]

# model_config keys that describe the architecture (what --convert takes from config.json)
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
    "max_position_embedding",
    "sliding_window",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

MODEL_TYPES = ("mistral",)


def _check_window(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: expected a positive int or null, got {value!r}")
    return value


def _check_rope(rope_scaling: Any, where: str) -> None:
    if rope_scaling is None:
        return
    kind = rope_scaling.get("rope_type", rope_scaling.get("type")) if isinstance(rope_scaling, dict) else rope_scaling
    if kind != "default":
        raise ValueError(f"{where}: {rope_scaling!r} is not supported by the Mistral model (expected null)")


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for an HF Mistral ``config.json`` dict.

    Raises ``ValueError`` naming the HF key for what the model does not compute (another ``model_type``, a
    non-SiLU activation, ``rope_scaling``).
    """
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type", "mistral")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"config.json: model_type {model_type!r} is not a Mistral model (expected 'mistral')")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    _check_rope(hf.get("rope_scaling"), "config.json: rope_scaling")
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    return {
        "hidden_size": hidden,
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hidden // heads,
        "intermediate_size": hf.get("intermediate_size", 14336),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": float(hf.get("rope_theta", 10000.0)),
        "max_position_embedding": hf.get("max_position_embeddings", 32768),
        "sliding_window": _check_window(hf.get("sliding_window"), "config.json: sliding_window"),
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``MistralConfig`` dict (``config.json`` content) for a ``model_config`` mapping."""
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    out = {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "hidden_size": hidden,
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or hidden // heads,
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 32768),
        "sliding_window": _check_window(mc.get("sliding_window"), "model_config.sliding_window"),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out


def check_model_config(mc: dict) -> list[tuple[str, str]]:
    """Problems of a YAML ``model_config`` for ``mf-ext validate``: ``(key path below model_config, message)``."""
    out = []
    try:
        _check_window(mc.get("sliding_window"), "sliding_window")
    except ValueError as exc:
        out.append(("sliding_window", str(exc).split(": ", 1)[1]))
    try:
        _check_rope(mc.get("rope_scaling"), "rope_scaling")
    except ValueError as exc:
        out.append(("rope_scaling", str(exc).split(": ", 1)[1]))
    return out
