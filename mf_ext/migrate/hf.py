"""HF ``config.json`` <-> MindFormers ``model_config``, through the plug-in's own config class.

The field mapping lives in one place: the plug-in config class's ``from_hf_config`` / ``to_hf_config``
(``research/llama3_1/llama3_1_config.py: Llama3Config``). This module finds that class in a register path
(reading files with ``ast``, importing only the one module), and turns its objects into YAML fields and back.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from mf_ext.errors import MfExtError

# Architecture fields of an HF config.json: a round trip HF -> YAML -> HF must keep each of them.
ARCH_FIELDS: tuple[str, ...] = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
    "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings", "tie_word_embeddings",
    "bos_token_id", "eos_token_id", "pad_token_id", "hidden_act", "model_type",
)  # fmt: skip
_TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id")

# model_config fields written to a YAML for an HF config (MindFormers' LlamaConfig names), in YAML order; a plug-in
# config class's own ``HF_ARCHITECTURE_KEYS`` takes precedence.
YAML_FIELDS: tuple[str, ...] = (
    "hidden_size", "num_layers", "num_heads", "n_kv_heads", "head_dim", "vocab_size", "intermediate_size",
    "rms_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embedding", "theta",
    "rope_scaling", "tie_word_embeddings",
)  # fmt: skip
_NOT_CONFIG_KWARGS = ("type", "auto_register")


class HFConfigError(MfExtError, ValueError):
    """An HF config.json or a register path this module cannot use (one line, names the file)."""


def _classes_in(path: Path) -> dict[str, set[str]]:
    """Class name -> names of methods defined in its body, for the classes of a file (no import)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    return {
        n.name: {m.name for m in n.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for n in tree.body
        if isinstance(n, ast.ClassDef)
    }


def plugin_references(register_path: str | Path) -> dict[str, str]:
    """``auto_register`` references of a plug-in folder's config, model and tokenizer classes, found by reading
    its files: the config class is the one with ``from_hf_config``; the model a ``*ForCausalLM`` class of a
    ``*_model.py``; the tokenizer a ``*Tokenizer`` class of a ``*_tokenizer.py``."""
    root = Path(register_path)
    if not root.is_dir():
        raise HFConfigError(f"register path {str(register_path)!r} is not a folder")
    refs: dict[str, str] = {}
    for f in sorted(root.glob("*.py")):
        for cls, methods in _classes_in(f).items():
            if "from_hf_config" in methods and "to_hf_config" in methods:
                refs.setdefault("config", f"{f.stem}.{cls}")
            elif f.stem.endswith("_model") and cls.endswith("ForCausalLM"):
                refs.setdefault("model", f"{f.stem}.{cls}")
            elif f.stem.endswith("_tokenizer") and cls.endswith("Tokenizer"):
                refs.setdefault("tokenizer", f"{f.stem}.{cls}")
    if "config" not in refs:
        raise HFConfigError(
            f"register path {str(register_path)!r} has no config class with from_hf_config/to_hf_config "
            "(expected e.g. llama3_1_config.py: Llama3Config)"
        )
    return refs


def config_class(register_path: str | Path) -> type:
    """The plug-in's config class (imports that one module, and MindFormers with it)."""
    from mf_ext.registry import RegistryError, load_plugin, resolve_class

    ref = plugin_references(register_path)["config"]
    try:
        cls, _ = resolve_class(ref, [load_plugin(register_path)], key="--register_path")
    except RegistryError as exc:
        raise HFConfigError(str(exc)) from None
    return cls


def hf_to_model_config(
    hf: dict[str, Any], register_path: str | Path, source: str = "config.json", **overrides: Any
) -> dict[str, Any]:
    """``model_config`` architecture fields for an HF ``config.json`` dict, mapped by the plug-in's config class.

    Fields equal to what the class derives anyway (``head_dim`` = hidden/heads) and unset token ids are left out.
    """
    cls = config_class(register_path)
    try:
        cfg = cls.from_hf_config(hf, **overrides)
    except (ValueError, TypeError, KeyError) as exc:
        msg = str(exc)
        raise HFConfigError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    out: dict[str, Any] = {}
    for name in getattr(cls, "HF_ARCHITECTURE_KEYS", YAML_FIELDS):  # the class's own list when it has one
        value = getattr(cfg, name, None)
        if value is None:
            continue
        if name == "head_dim" and value * cfg.num_heads == cfg.hidden_size:
            continue
        if name == "rope_scaling" and isinstance(value, dict) and "type" in value:
            # HF's spelling in the YAML: a nested `type` key reads like a MindFormers class to build
            value = {"rope_type": value["type"], **{k: v for k, v in value.items() if k != "type"}}
        out[name] = value
    return out


def model_config_to_hf(model_config: dict[str, Any], register_path: str | Path) -> dict[str, Any]:
    """HF ``config.json`` dict for a YAML's ``model.model_config`` (built with the plug-in's config class)."""
    cls = config_class(register_path)
    kwargs = {k: v for k, v in model_config.items() if k not in _NOT_CONFIG_KWARGS}
    try:
        return cls(**kwargs).to_hf_config()
    except (ValueError, TypeError) as exc:
        raise HFConfigError(f"model.model_config: {exc}") from None


def compare_arch(model_config: dict[str, Any], hf: dict[str, Any], register_path: str | Path) -> list[str]:
    """Architecture fields where a YAML's ``model_config`` and an HF ``config.json`` disagree, one line each
    (what ``--convert`` checks before loading weights converted from that config.json)."""
    ours = model_config_to_hf(model_config, register_path)
    theirs = config_class(register_path).from_hf_config(hf).to_hf_config()
    return [
        f"model.model_config: {name} is {ours.get(name)!r} in the YAML but {theirs.get(name)!r} in config.json"
        for name in ARCH_FIELDS
        if name not in _TOKEN_FIELDS and ours.get(name) != theirs.get(name)
    ]
