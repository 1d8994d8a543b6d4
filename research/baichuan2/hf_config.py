"""HF ``config.json`` <-> MindFormers ``model_config`` for Baichuan2 (7B and 13B): the one place this mapping lives.

Pure functions on dicts. Baichuan2's ``config.json`` (``configuration_baichuan.py`` of baichuan-inc/Baichuan2-7B-Base
and -13B-Base, remote code): ``architectures: [BaichuanForCausalLM]``, ``model_type: baichuan``, MHA
(``num_attention_heads``, no key/value head count), ``max_position_embeddings`` (7B) or ``model_max_length`` (13B),
``z_loss_weight`` (Baichuan2's; Baichuan (v1), whose head is a plain ``lm_head``, has none and is refused -- unless its
vocabulary is Baichuan2's 125696, vLLM's test for a NormHead).
Both sizes share that config; their modeling files differ in the position encoding -- 7B rotary (base 10000),
13B ALiBi -- which config.json does not name. ``position_embedding`` (``"rope"`` / ``"alibi"``) says it when present
(``to_hf_config`` writes it); otherwise ``hidden_size`` 5120 (the 13B models) means ALiBi, anything else rotary.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCH_KEYS", "to_model_config", "to_hf_config", "position_embedding"]

ARCH_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "vocab_size",
    "rms_norm_eps",
    "position_embedding",
    "theta",
    "max_position_embedding",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)
POSITION_EMBEDDINGS = ("rope", "alibi")
ALIBI_HIDDEN_SIZE = 5120  # Baichuan-13B / Baichuan2-13B
BAICHUAN2_VOCAB = 125696


def position_embedding(hf: dict) -> str:
    """``"rope"`` or ``"alibi"`` for a Baichuan ``config.json`` dict (see the module docstring)."""
    pe = hf.get("position_embedding")
    if pe is None:
        return "alibi" if hf.get("hidden_size") == ALIBI_HIDDEN_SIZE else "rope"
    if pe not in POSITION_EMBEDDINGS:
        raise ValueError(f"config.json: position_embedding {pe!r} is not one of {POSITION_EMBEDDINGS}")
    return pe


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for a Baichuan2 ``config.json`` dict."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "baichuan") != "baichuan":
        raise ValueError(f"config.json: model_type {hf.get('model_type')!r} is not 'baichuan'")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    if "z_loss_weight" not in hf and hf["vocab_size"] != BAICHUAN2_VOCAB:
        raise ValueError(
            f"config.json: not a Baichuan2 checkpoint (no z_loss_weight, vocab_size {hf['vocab_size']} != "
            f"{BAICHUAN2_VOCAB}); Baichuan (v1) has a plain lm_head where this model has Baichuan2's NormHead"
        )
    kv = hf.get("num_key_value_heads")
    if kv not in (None, hf["num_attention_heads"]):
        raise ValueError(f"config.json: num_key_value_heads {kv!r}: Baichuan2's W_pack is multi-head (no GQA)")
    return {
        "hidden_size": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": hf["num_attention_heads"],
        "intermediate_size": hf.get("intermediate_size"),
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "position_embedding": position_embedding(hf),
        "theta": float(hf.get("rope_theta", 10000.0)),
        "max_position_embedding": hf.get("max_position_embeddings") or hf.get("model_max_length") or 4096,
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """Baichuan2's ``config.json`` for a ``model_config`` mapping (``position_embedding`` written explicitly)."""
    pe = mc.get("position_embedding") or "rope"
    if pe not in POSITION_EMBEDDINGS:
        raise ValueError(f"model_config.position_embedding: {pe!r} is not one of {POSITION_EMBEDDINGS}")
    max_pos = mc.get("max_position_embedding") or mc.get("seq_length", 4096)
    out = {
        "architectures": ["BaichuanForCausalLM"],
        "model_type": "baichuan",
        "hidden_act": "silu",
        "hidden_size": mc["hidden_size"],
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": mc["num_heads"],
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1e-6),
        "position_embedding": pe,
        "max_position_embeddings": max_pos,
        "model_max_length": max_pos,
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
        "z_loss_weight": 0,
    }
    if pe == "rope" and float(mc.get("theta", 10000.0)) != 10000.0:
        out["rope_theta"] = float(mc["theta"])
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
