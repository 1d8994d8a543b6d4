"""HF ``GPT2LMHeadModel`` ``config.json`` <-> MindFormers ``model_config``: the one place this mapping lives.

Pure functions on dicts (no MindSpore): the config class, the weight spec, ``--convert`` and ``mf-ext migrate`` use
them. ``model_config`` names follow MindFormers' GPT2 config (``num_layers``, ``num_heads``, ``seq_length``...);
``max_position_embedding`` is the learned position table (HF ``n_positions``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "ACTIVATIONS", "to_model_config", "to_hf_config"]

ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embedding",
    "layernorm_epsilon",
    "hidden_act",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

# HF activation_function values the shared GELU MLP computes
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "relu")
# switches of HF GPT2 this model does not compute: (key, the only value accepted)
_FIXED = (
    ("scale_attn_weights", True),
    ("scale_attn_by_inverse_layer_idx", False),
    ("add_cross_attention", False),
)


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys for an HF GPT2 ``config.json`` dict; ``ValueError`` naming the
    HF key for what the model does not compute."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"config.json: model_type {hf.get('model_type')!r} is not a GPT2 model (expected 'gpt2')")
    missing = [k for k in ("n_embd", "n_layer", "n_head", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    act = hf.get("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise ValueError(f"config.json: activation_function {act!r} is not supported (expected one of {ACTIVATIONS})")
    for key, value in _FIXED:
        if hf.get(key, value) != value:
            raise ValueError(f"config.json: {key}={hf[key]!r} is not supported by the GPT2 model (expected {value!r})")
    hidden = hf["n_embd"]
    return {
        "hidden_size": hidden,
        "num_layers": hf["n_layer"],
        "num_heads": hf["n_head"],
        "intermediate_size": hf.get("n_inner") or 4 * hidden,
        "vocab_size": hf["vocab_size"],
        "max_position_embedding": hf.get("n_positions", 1024),
        "layernorm_epsilon": hf.get("layer_norm_epsilon", 1e-5),
        "hidden_act": act,
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", True)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``GPT2Config`` dict (``config.json`` content) for a ``model_config`` mapping."""
    hidden = mc["hidden_size"]
    inter = mc.get("intermediate_size") or 4 * hidden
    out = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_embd": hidden,
        "n_layer": mc["num_layers"],
        "n_head": mc["num_heads"],
        "n_inner": None if inter == 4 * hidden else inter,
        "vocab_size": mc["vocab_size"],
        "n_positions": mc.get("max_position_embedding") or mc.get("seq_length", 1024),
        "layer_norm_epsilon": mc.get("layernorm_epsilon", 1e-5),
        "activation_function": mc.get("hidden_act") or "gelu_new",
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", True)),
        "scale_attn_weights": True,
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
