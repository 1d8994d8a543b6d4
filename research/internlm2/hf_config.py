"""HF ``config.json`` <-> MindFormers ``model_config`` for InternLM2 (and InternLM): the one place this mapping lives.

Pure functions on dicts (no MindSpore, no MindFormers). Two checkpoint formats are read, both remote code on the Hub:

* InternLM2 (``internlm/internlm2-chat-7b`` ...): ``model_type: internlm2``, ``architectures: [InternLM2ForCausalLM]``,
  one ``bias`` flag for ``wqkv`` and ``wo``, ``rope_theta`` and ``rope_scaling: {type: dynamic|linear, factor}``
  (``configuration_internlm2.py`` / ``modeling_internlm2.py`` of those repos).
* InternLM (``internlm/internlm-7b``): Llama's names and architecture with biases on q/k/v/o (``bias: true``),
  ``model_type: internlm``; its rotary may be given as ``rotary: {base, type, scaling_factor}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "MODEL_TYPES", "to_model_config", "to_hf_config", "normalize_rope_scaling"]

ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "n_kv_heads",
    "intermediate_size",
    "vocab_size",
    "rms_norm_eps",
    "theta",
    "rope_scaling",
    "max_position_embedding",
    "has_bias",
    "hf_layout",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

# model_type -> (architecture, checkpoint layout)
MODEL_TYPES = {"internlm2": ("InternLM2ForCausalLM", "internlm2"), "internlm": ("InternLMForCausalLM", "internlm")}
ROPE_TYPES = ("linear", "dynamic")


def normalize_rope_scaling(rope_scaling: Any, where: str = "rope_scaling") -> dict | None:
    """``{"type": "linear"|"dynamic", "factor": f}`` or None; raises ``ValueError`` naming ``where`` otherwise."""
    if rope_scaling is None:
        return None
    if not isinstance(rope_scaling, dict):
        raise ValueError(f"{where}: expected a mapping or null, got {rope_scaling!r}")
    kind = rope_scaling.get("type", rope_scaling.get("rope_type", "default"))
    if kind == "default":
        return None
    if kind not in ROPE_TYPES:
        raise ValueError(f"{where}.type: {kind!r} is not supported; expected one of {ROPE_TYPES}")
    factor = rope_scaling.get("factor")
    if not isinstance(factor, (int, float)) or isinstance(factor, bool):
        raise ValueError(f"{where}.factor: expected a number, got {factor!r}")
    return {"type": kind, "factor": float(factor)}


def _rotary(hf: dict) -> tuple[float, dict | None]:
    """(theta, rope_scaling) from ``rope_theta``/``rope_scaling`` or InternLM's older ``rotary`` block."""
    rotary = hf.get("rotary")
    if isinstance(rotary, dict) and "rope_scaling" not in hf:
        theta = float(rotary.get("base", hf.get("rope_theta", 10000.0)))
        kind = rotary.get("type", "origin")
        if kind == "origin":
            return theta, None
        return theta, normalize_rope_scaling(
            {"type": kind, "factor": rotary.get("scaling_factor", 1.0)}, "config.json: rotary"
        )
    return float(hf.get("rope_theta", 10000.0)), normalize_rope_scaling(
        hf.get("rope_scaling"), "config.json: rope_scaling"
    )


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for an InternLM2 / InternLM ``config.json``.

    Raises ``ValueError`` naming the key for what the model does not compute.
    """
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type", "internlm2")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"config.json: model_type {model_type!r} is not one of {sorted(MODEL_TYPES)}")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    theta, rope = _rotary(hf)
    heads = hf["num_attention_heads"]
    return {
        "hidden_size": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "intermediate_size": hf.get("intermediate_size"),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "theta": theta,
        "rope_scaling": rope,
        "max_position_embedding": hf.get("max_position_embeddings", 2048),
        "has_bias": bool(hf.get("bias", model_type == "internlm")),
        "hf_layout": MODEL_TYPES[model_type][1],
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """The ``config.json`` (InternLM2's, or InternLM's when ``mc["hf_layout"] == "internlm"``) for a model_config."""
    layout = mc.get("hf_layout") or "internlm2"
    model_type = next((t for t, (_, lay) in MODEL_TYPES.items() if lay == layout), None)
    if model_type is None:
        raise ValueError(f"model_config.hf_layout: {layout!r} is not one of {[v[1] for v in MODEL_TYPES.values()]}")
    heads = mc["num_heads"]
    rope = normalize_rope_scaling(mc.get("rope_scaling"), "model_config.rope_scaling")
    out = {
        "architectures": [MODEL_TYPES[model_type][0]],
        "model_type": model_type,
        "bias": bool(mc.get("has_bias", False)),
        "hidden_act": "silu",
        "hidden_size": mc["hidden_size"],
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "rope_scaling": rope,
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 2048),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
