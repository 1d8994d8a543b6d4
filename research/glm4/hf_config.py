"""HF ``config.json`` <-> MindFormers ``model_config`` for the GLM family (GLM-2/3/4): the one place this mapping lives.

Two source configs describe the same network:

* HF transformers' ``GlmForCausalLM`` (``model_type: glm``, e.g. ``THUDM/glm-4-9b-hf``): Llama-style names plus
  ``partial_rotary_factor`` (rotary on the first half of each head, interleaved pairs) and ``attention_bias``;
* THUDM's remote-code ``ChatGLMModel`` (``model_type: chatglm``, ChatGLM2/3 and ``glm-4-9b(-chat)``):
  ``num_layers``, ``padded_vocab_size``, ``ffn_hidden_size``, ``kv_channels``, ``multi_query_group_num``,
  ``layernorm_epsilon``, ``rope_ratio`` (rotary base ``10000 * rope_ratio``), ``add_qkv_bias``, ``seq_length``. Its
  rotary covers ``kv_channels // 2`` channels of each head, interleaved, exactly as ``partial_rotary_factor: 0.5``.

Pure Python: the registry, ``mf-ext migrate`` and the weight spec import it without MindSpore.
"""

from __future__ import annotations

from typing import Any

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
    "partial_rotary_factor",
    "qkv_has_bias",
    "max_position_embedding",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

HF_ARCHITECTURE = "GlmForCausalLM"
CHATGLM_ARCHITECTURES = ("ChatGLMModel", "ChatGLMForConditionalGeneration")
CHATGLM_BASE = 10000.0  # THUDM's rotary base before rope_ratio

# ChatGLM switches whose other value computes another network than this family's model
_CHATGLM_FIXED = {
    "rmsnorm": True,
    "post_layer_norm": True,
    "apply_residual_connection_post_layernorm": False,
    "add_bias_linear": False,
    "multi_query_attention": True,
}


def is_chatglm(hf: dict) -> bool:
    """Whether a ``config.json`` dict is THUDM's remote-code ChatGLM format (else HF ``GlmForCausalLM``)."""
    archs = hf.get("architectures") or ()
    return hf.get("model_type") == "chatglm" or any(a in CHATGLM_ARCHITECTURES for a in archs)


def chatglm_to_hf(cfg: dict) -> dict[str, Any]:
    """HF ``GlmConfig`` dict describing the network of a ChatGLM ``config.json`` dict.

    Raises ``ValueError`` naming the key for a ChatGLM variant this family does not compute (LayerNorm, post-norm
    residuals, linear biases, heads without key/value groups, P-tuning prefixes).
    """
    for key, want in _CHATGLM_FIXED.items():
        if key in cfg and bool(cfg[key]) != want:
            raise ValueError(f"config.json: {key}={cfg[key]!r} is not supported (GLM-2/3/4 use {want!r})")
    if cfg.get("pre_seq_len"):
        raise ValueError(f"config.json: pre_seq_len={cfg['pre_seq_len']!r} (P-tuning prefix) is not supported")
    required = ("hidden_size", "num_layers", "num_attention_heads", "padded_vocab_size", "ffn_hidden_size")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f"config.json: missing required ChatGLM keys {missing}")
    heads = cfg["num_attention_heads"]
    out = {
        "architectures": [HF_ARCHITECTURE],
        "model_type": "glm",
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["ffn_hidden_size"],
        "num_hidden_layers": cfg["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": cfg.get("multi_query_group_num", 2),
        "head_dim": cfg.get("kv_channels") or cfg["hidden_size"] // heads,
        "partial_rotary_factor": 0.5,
        "vocab_size": cfg["padded_vocab_size"],
        "rms_norm_eps": cfg.get("layernorm_epsilon", 1e-5),
        "rope_theta": CHATGLM_BASE * float(cfg.get("rope_ratio", 1) or 1),
        "max_position_embeddings": cfg.get("seq_length", 2048),
        "attention_bias": bool(cfg.get("add_qkv_bias", True)),
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "hidden_act": "silu",
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype"):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    return out


def hf_to_chatglm(hf: dict) -> dict[str, Any]:
    """ChatGLM ``config.json`` dict (THUDM's keys) for an HF ``GlmConfig`` dict: the way back of :func:`chatglm_to_hf`."""
    heads = hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    if int(head_dim * hf.get("partial_rotary_factor", 0.5)) * 2 != head_dim:
        raise ValueError(
            f"config.json: partial_rotary_factor {hf.get('partial_rotary_factor')!r} has no ChatGLM layout "
            "(ChatGLM rotates half of each head)"
        )
    out = {
        "architectures": ["ChatGLMModel"],
        "model_type": "chatglm",
        "num_layers": hf["num_hidden_layers"],
        "padded_vocab_size": hf["vocab_size"],
        "hidden_size": hf["hidden_size"],
        "ffn_hidden_size": hf["intermediate_size"],
        "kv_channels": head_dim,
        "num_attention_heads": heads,
        "multi_query_attention": True,
        "multi_query_group_num": hf.get("num_key_value_heads") or heads,
        "seq_length": hf.get("max_position_embeddings", 2048),
        "layernorm_epsilon": hf.get("rms_norm_eps", 1e-5),
        "rope_ratio": float(hf.get("rope_theta", CHATGLM_BASE)) / CHATGLM_BASE,
        "add_qkv_bias": bool(hf.get("attention_bias", True)),
        "add_bias_linear": False,
        "rmsnorm": True,
        "post_layer_norm": True,
        "apply_residual_connection_post_layernorm": False,
        "original_rope": True,
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype"):
        if hf.get(key) is not None:
            out[key] = hf[key]
    return out


def to_model_config(hf: dict) -> dict[str, Any]:
    """MindFormers ``model_config`` architecture keys (``ARCH_KEYS``) for a GLM ``config.json`` dict (HF
    ``GlmForCausalLM`` or THUDM's ChatGLM). Raises ``ValueError`` naming the key for what the model does not compute.
    """
    if not isinstance(hf, dict):
        raise ValueError(f"config.json: expected a JSON object, got {type(hf).__name__}")
    if is_chatglm(hf):
        hf = chatglm_to_hf(hf)
    model_type = hf.get("model_type", "glm")
    if model_type != "glm":
        raise ValueError(f"config.json: model_type {model_type!r} is not a GLM model (expected 'glm' or 'chatglm')")
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size")
    missing = [k for k in required if k not in hf]
    if missing:
        raise ValueError(f"config.json: missing required keys {missing}")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"config.json: hidden_act {hf['hidden_act']!r} is not supported (expected 'silu')")
    if hf.get("rope_scaling") is not None:
        raise ValueError(f"config.json: rope_scaling {hf['rope_scaling']!r} is not supported (expected null)")
    heads = hf["num_attention_heads"]
    return {
        "hidden_size": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": heads,
        "n_kv_heads": hf.get("num_key_value_heads") or heads,
        "head_dim": hf.get("head_dim") or hf["hidden_size"] // heads,
        "intermediate_size": hf["intermediate_size"],
        "vocab_size": hf["vocab_size"],
        "rms_norm_eps": hf.get("rms_norm_eps", 1.5625e-07),
        "theta": float(hf.get("rope_theta", 10000.0)),
        "partial_rotary_factor": float(hf.get("partial_rotary_factor", 0.5)),
        "qkv_has_bias": bool(hf.get("attention_bias", True)),
        "max_position_embedding": hf.get("max_position_embeddings", 131072),
        "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"),
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }


def to_hf_config(mc: dict) -> dict[str, Any]:
    """HF ``GlmConfig`` dict (``config.json`` of ``GlmForCausalLM``) for a ``model_config`` mapping."""
    hidden, heads = mc["hidden_size"], mc["num_heads"]
    out = {
        "architectures": [HF_ARCHITECTURE],
        "model_type": "glm",
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "hidden_size": hidden,
        "intermediate_size": mc["intermediate_size"],
        "num_hidden_layers": mc["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": mc.get("n_kv_heads") or heads,
        "head_dim": mc.get("head_dim") or hidden // heads,
        "partial_rotary_factor": float(mc.get("partial_rotary_factor", 0.5)),
        "vocab_size": mc["vocab_size"],
        "rms_norm_eps": mc.get("rms_norm_eps", 1.5625e-07),
        "rope_theta": float(mc.get("theta", 10000.0)),
        "attention_bias": bool(mc.get("qkv_has_bias", True)),
        "max_position_embeddings": mc.get("max_position_embedding") or mc.get("seq_length", 131072),
        "tie_word_embeddings": bool(mc.get("tie_word_embeddings", False)),
        "bos_token_id": mc.get("bos_token_id"),
        "eos_token_id": mc.get("eos_token_id"),
        "pad_token_id": mc.get("pad_token_id"),
    }
    if "init_method_std" in mc:
        out["initializer_range"] = mc["init_method_std"]
    return out
