"""HF ``config.json`` <-> MindFormers ``model_config`` for the Llama family: the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers): ``Llama3Config.from_hf_config`` / ``to_hf_config``, the
weight spec (``ms_to_hf`` from a YAML) and ``mf-ext migrate`` all use them.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ARCH_KEYS", "to_model_config", "to_hf_config", "check_model_config", "normalize_rope_scaling", "ffn_size"]

# model_config keys that describe the architecture (what --convert takes from config.json); the rest (seq_length,
# dtypes, use_past, ...) are run settings a YAML keeps.
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
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
LLAMA3_ROPE_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
MODEL_TYPES = ("llama",)


def normalize_rope_scaling(rope_scaling: dict | None, where: str = "rope_scaling") -> dict | None:
    """Return ``rope_scaling`` as ``{"type": ..., <params>}`` or ``None``; raise ``ValueError`` if unsupported.

    HF spells the kind ``rope_type`` (older files: ``type``); MindFormers YAMLs use ``type``. Both are accepted.
    """
    if rope_scaling is None:
        return None
    if not isinstance(rope_scaling, dict):
        raise ValueError(f"{where}: expected a mapping or null, got {rope_scaling!r}")
    scaling = {k: v for k, v in dict(rope_scaling).items() if k not in ("rope_type", "type")}
    kind = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
    if kind not in SUPPORTED_ROPE_TYPES:
        raise ValueError(f"{where}.rope_type: {kind!r} is not supported; expected one of {SUPPORTED_ROPE_TYPES}")
    if kind == "default":
        return None
    if kind == "llama3":
        missing = [k for k in LLAMA3_ROPE_KEYS if k not in scaling]
        if missing:
            raise ValueError(f"{where}: rope_type 'llama3' needs keys {missing}, got {rope_scaling!r}")
    if kind == "linear" and "factor" not in scaling:
        raise ValueError(f"{where}: rope_type 'linear' needs 'factor', got {rope_scaling!r}")
    return {"type": kind, **scaling}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_model_config(mc: dict) -> list[tuple[str, str]]:
    """Problems of a YAML ``model_config`` (YAML values over the config class's defaults) that only this family's
    rope scaling knows about, for ``mf-ext validate``: ``(key path below model_config, message)`` each."""
    rs = mc.get("rope_scaling")
    if rs is None:
        return []
    if not isinstance(rs, dict):
        return [("rope_scaling", f"expected a mapping or null, got {rs!r}")]
    out: list[tuple[str, str]] = []
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "llama3":
        for key in LLAMA3_ROPE_KEYS:
            if key not in rs:
                out.append((f"rope_scaling.{key}", "missing (needed by rope_type 'llama3')"))
            elif not _number(rs[key]):
                out.append((f"rope_scaling.{key}", f"expected a number, got {rs[key]!r}"))
        low, high = rs.get("low_freq_factor"), rs.get("high_freq_factor")
        if _number(low) and _number(high) and low >= high:
            out.append(("rope_scaling.high_freq_factor", f"{high!r} must be above low_freq_factor {low!r}"))
        orig = rs.get("original_max_position_embeddings")
        max_pos = mc.get("max_position_embedding") or mc.get("seq_length")
        if isinstance(orig, int) and _number(max_pos) and orig > max_pos:
            out.append(
                ("rope_scaling.original_max_position_embeddings", f"{orig} is above max_position_embedding {max_pos}")
            )
    elif kind not in SUPPORTED_ROPE_TYPES and kind is not None:
        out.append(("rope_scaling.rope_type", f"unknown kind {kind!r}; expected one of {SUPPORTED_ROPE_TYPES}"))
    elif kind == "linear" and not _number(rs.get("factor")):
        out.append(
            ("rope_scaling.factor", f"expected a number (needed by rope_type 'linear'), got {rs.get('factor')!r}")
        )
    return out


def ffn_size(dim: int, multiple_of: int | None, ffn_dim_multiplier: float | None) -> int:
    """Meta's / MindFormers' SwiGLU sizing rule when ``intermediate_size`` is not given explicitly."""
    hidden = 4 * dim
    if ffn_dim_multiplier is not None:
        hidden = int((ffn_dim_multiplier + 0.01) * hidden)
    hidden = int(2 * hidden / 3)
    multiple_of = multiple_of or 256
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for an HF Llama ``config.json`` dict.

    Raises ``ValueError`` naming the HF key for what the Llama model does not compute (biases, a non-SiLU
    activation, an unsupported ``rope_scaling``, another ``model_type``).
    """
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type", "llama")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"config.json: model_type {model_type!r} is not a Llama model (expected 'llama')")
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    missing = [k for k in required if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key, False):
            raise ValueError(f"config.json: {key}=true is not supported by the Llama model")
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    return {
        "hidden_size": hidden,
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hidden // heads,
        "intermediate_size": hf.get("intermediate_size"),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": hf.get("rope_theta", 10000.0),
        "rope_scaling": normalize_rope_scaling(hf.get("rope_scaling"), "config.json: rope_scaling"),
        "max_position_embedding": hf.get("max_position_embeddings", 2048),
        "tie_word_embeddings": hf.get("tie_word_embeddings", False),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``LlamaConfig`` dict (``config.json`` content) for a ``model_config`` mapping.

    Takes our ``Llama3Config`` fields and MindFormers' built-in ``LlamaConfig`` YAMLs alike (``multiple_of`` /
    ``ffn_dim_multiplier`` sizing when ``intermediate_size`` is unset, ``extend_method``-free ``rope_scaling``).
    """
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    inter = mc.get("intermediate_size") or ffn_size(hidden, mc.get("multiple_of", 256), mc.get("ffn_dim_multiplier"))
    rope = normalize_rope_scaling(mc.get("rope_scaling"), "model_config.rope_scaling")
    if rope is not None:
        rope = {"rope_type": rope["type"], **{k: v for k, v in rope.items() if k != "type"}}
    out = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "attention_bias": bool(mc.get("qkv_has_bias", False)),  # MindFormers' LlamaConfig spelling
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or hidden // heads,
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-5),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "rope_scaling": copy.deepcopy(rope),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 2048),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
