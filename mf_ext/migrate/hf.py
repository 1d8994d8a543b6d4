"""HF ``config.json`` <-> MindFormers ``model_config`` field mapping for the Llama family (pure data, no imports).

One table drives both directions, so a field added here is mapped both ways. ``Llama3Config.from_hf_config``
and the ``--convert`` consistency check can use these functions too (no MindSpore import needed).
"""

from __future__ import annotations

from typing import Any

# (HF name, MindFormers name, HF default, MindFormers default). Defaults are what each side builds when a file
# leaves the field out (transformers' LlamaConfig / MindFormers' LlamaConfig), so absent fields map correctly.
FIELDS: tuple[tuple[str, str, Any, Any], ...] = (
    ("hidden_size", "hidden_size", 4096, 4096),
    ("num_hidden_layers", "num_layers", 32, 32),
    ("num_attention_heads", "num_heads", 32, 32),
    ("num_key_value_heads", "n_kv_heads", None, None),  # None: same as the number of heads (no GQA)
    ("intermediate_size", "intermediate_size", 11008, None),  # None: MindFormers derives it (see _swiglu_width)
    ("vocab_size", "vocab_size", 32000, 32000),
    ("rms_norm_eps", "rms_norm_eps", 1e-6, 1e-5),
    ("rope_theta", "theta", 10000.0, 10000.0),
    ("rope_scaling", "rope_scaling", None, None),
    ("max_position_embeddings", "max_position_embedding", 2048, None),  # None: MindFormers uses seq_length
    ("tie_word_embeddings", "tie_word_embeddings", False, False),
    ("bos_token_id", "bos_token_id", 1, 1),
    ("eos_token_id", "eos_token_id", 2, 2),
    ("pad_token_id", "pad_token_id", None, 0),
)

# Fields that define the network (shapes and numerics); a round trip must keep each of them.
ARCH_FIELDS: tuple[str, ...] = tuple(f[0] for f in FIELDS)

SUPPORTED_MODEL_TYPES = ("llama", "mistral")
_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


class HFConfigError(ValueError):
    """An HF config.json this mapping cannot represent (names the field)."""


def hf_to_mf(hf: dict[str, Any], source: str = "config.json") -> dict[str, Any]:
    """MindFormers ``model_config`` fields (architecture only) for an HF Llama-family ``config.json`` dict."""
    if not isinstance(hf, dict):
        raise HFConfigError(f"{source}: expected a JSON object, got {type(hf).__name__}")
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise HFConfigError(
            f"{source}: model_type {model_type!r} is not a Llama-family model (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    if hf.get("sliding_window") not in (None, 0) and model_type == "mistral":
        raise HFConfigError(f"{source}: sliding_window {hf['sliding_window']!r} is not supported (Llama attention is global)")
    if hf.get("mlp_bias"):
        raise HFConfigError(f"{source}: mlp_bias {hf['mlp_bias']!r} is not supported by MindFormers' Llama")
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise HFConfigError(f"{source}: hidden_act {act!r} is not supported (expected 'silu')")
    out: dict[str, Any] = {}
    for hf_name, mf_name, default, _ in FIELDS:
        value = hf.get(hf_name, default)
        if hf_name == "num_key_value_heads" and value is None:
            value = hf.get("num_attention_heads", 32)
        if value is None:
            continue  # e.g. no pad token: leave it out rather than write null
        out[mf_name] = value
    head_dim = hf.get("head_dim")
    if head_dim is not None and head_dim * out["num_heads"] != out["hidden_size"]:
        raise HFConfigError(
            f"{source}: head_dim {head_dim!r} * num_attention_heads {out['num_heads']!r} != hidden_size "
            f"{out['hidden_size']!r}; MindFormers' Llama derives head_dim from hidden_size"
        )
    if hf.get("attention_bias"):
        out["qkv_has_bias"] = True
        out["attn_proj_has_bias"] = True
    rs = out.get("rope_scaling")
    if rs is not None:
        rs = dict(rs)
        if "type" in rs and "rope_type" not in rs:  # older transformers spelling
            rs["rope_type"] = rs.pop("type")
        out["rope_scaling"] = rs
    return out


def mf_to_hf(mf: dict[str, Any], torch_dtype: str | None = None) -> dict[str, Any]:
    """An HF ``config.json`` dict (``LlamaForCausalLM``) for MindFormers ``model_config`` fields; MindFormers'
    own defaults apply to fields the YAML leaves out (n_kv_heads = num_heads, max positions = seq_length)."""
    hf: dict[str, Any] = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu"}
    for hf_name, mf_name, _, mf_default in FIELDS:
        if mf.get(mf_name) is not None:
            hf[hf_name] = mf[mf_name]
        elif hf_name == "num_key_value_heads":
            hf[hf_name] = mf.get("num_heads", 32)
        elif hf_name == "max_position_embeddings":
            hf[hf_name] = mf.get("seq_length", 2048)
        elif hf_name == "intermediate_size":
            hf[hf_name] = _swiglu_width(mf)
        else:
            hf[hf_name] = mf_default
    if mf.get("qkv_has_bias") or mf.get("attn_proj_has_bias"):
        hf["attention_bias"] = True
    hf["mlp_bias"] = False
    dtype = torch_dtype or mf.get("param_init_type")
    if dtype in _DTYPES:
        hf["torch_dtype"] = _DTYPES[dtype]
    return hf


def _swiglu_width(mf: dict[str, Any]) -> int:
    """MindFormers' rule when intermediate_size is absent: 2/3 * 4h, times ffn_dim_multiplier, up to multiple_of."""
    hidden = int(mf.get("hidden_size", 4096))
    multiple_of = int(mf.get("multiple_of", 256))
    width = int(2 * (4 * hidden) / 3)
    if mf.get("ffn_dim_multiplier") is not None:
        width = int(mf["ffn_dim_multiplier"] * width)
    return multiple_of * ((width + multiple_of - 1) // multiple_of)


def compare_arch(mf: dict[str, Any], hf: dict[str, Any]) -> list[str]:
    """Architecture fields where a YAML's ``model_config`` and an HF ``config.json`` disagree, one line each."""
    ours = mf_to_hf(mf)
    theirs = mf_to_hf(hf_to_mf(hf))
    return [
        f"model.model_config: {name} is {ours.get(name)!r} in the YAML but {theirs.get(name)!r} in config.json"
        for name in ARCH_FIELDS
        if name not in ("bos_token_id", "eos_token_id", "pad_token_id") and ours.get(name) != theirs.get(name)
    ]
