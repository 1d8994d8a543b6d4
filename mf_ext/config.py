"""Load a MindFormers YAML the way the launcher, the Python API and the CLIs all do.

``load_config(path, register_path, overrides)``:
1. reads the YAML with ``yaml.safe_load`` (a one-line error for a missing file, bad YAML or a non-mapping);
2. builds MindFormers' ``MindFormerConfig`` from it (``base_config`` inheritance and MindFormers' run-mode templates);
3. applies dotted overrides (``model.model_config.seq_length=256``; values are parsed as YAML scalars);
4. makes relative file paths under known keys (``vocab_file``, ``convert``, ...) relative to the YAML's folder when
   they exist there, so a YAML works from any working directory;
5. resolves every ``auto_register`` once, against the register path(s), registering the classes into MindFormers'
   ``MindFormerRegister`` (see :mod:`mf_ext.registry`).
The file on disk and the dict passed in are never modified.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mf_ext.errors import MfExtError
from mf_ext.registry import RegistryError, resolve_auto_register


class ConfigError(MfExtError, ValueError):
    """A bad YAML or override; the message is one line and names the file or key."""


# Top-level YAML keys that mf-ext reads beyond MindFormers' own (``mf-ext validate`` accepts them).
MF_EXT_TOP_LEVEL_KEYS = frozenset(
    {
        "convert",  # launcher / load_model: HF folder to convert (cached) and load, as --convert
        "trainer_backend",  # mf_ext.train: "mf_ext" (own compiled step) or "mindformers" (MindFormers' Trainer)
    }
)

# Keys whose relative values are file/folder paths, resolved against the YAML's folder when they exist there.
PATH_KEYS = frozenset({"vocab_file", "tokenizer_file", "merges_file", "convert", "load_checkpoint", "dataset_dir"})


def read_yaml(path: str | os.PathLike) -> dict:
    """``yaml.safe_load`` a file that must hold a mapping, with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config {str(path)!r} does not exist")
    if not p.is_file():
        raise ConfigError(f"config {str(path)!r} is not a file (expected a YAML file)")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"config {str(path)!r}: invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {str(path)!r}: not a UTF-8 text file (expected YAML)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {str(path)!r}: expected a YAML mapping at top level, got {type(data).__name__}")
    return data


def parse_overrides(items) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` or ``{"a.b": 1}`` → ``{"a.b": 1, "c": "x"}`` (string values parsed as YAML scalars)."""
    if not items:
        return {}
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep or not key:
                raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. model.model_config.seq_length=256")
            pairs.append((key.strip().removeprefix("--"), value))
    out = {}
    for key, value in pairs:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value != "" else ""
            except yaml.YAMLError:
                pass  # keep the raw string
        out[key] = value
    return out


def apply_overrides(cfg: dict, overrides: dict[str, Any]) -> None:
    """Set dotted keys in a nested dict; every parent except the last must exist and be a mapping."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = cfg
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = {}
                node[part] = nxt
            elif not isinstance(nxt, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"override {dotted!r}: {where!r} is a {type(nxt).__name__}, not a mapping")
            node = nxt
        node[parts[-1]] = value


def _resolve_paths(node, base: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PATH_KEYS and isinstance(value, str) and value and not os.path.isabs(value):
                cand = base / value
                if cand.exists():  # YAML-relative wins; otherwise the value stays relative to the cwd
                    node[key] = str(cand.resolve())
            else:
                _resolve_paths(value, base)
    elif isinstance(node, list):
        for v in node:
            _resolve_paths(v, base)


def _to_plain(node):
    if isinstance(node, dict):
        return {k: _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    return node


def load_config(
    path: str | os.PathLike | dict,
    register_path=None,
    overrides=None,
    *,
    register: bool = True,
    template: bool = True,
):
    """Load a YAML (or a dict) into a ``MindFormerConfig`` with every ``auto_register`` resolved and registered."""
    return load_config_ex(path, register_path, overrides, register=register, template=template)[0]


def load_config_ex(
    path, register_path=None, overrides=None, *, register: bool = True, template: bool = True, flags=None
):
    """Like :func:`load_config`, and also return the list of :class:`~mf_ext.registry.Registered` entries.

    ``flags``: ``{dotted key: value}`` set as given (not parsed as YAML), or a function of the loaded YAML dict
    returning one; applied before ``overrides``. A ``run_mode`` among them selects MindFormers' run-mode template,
    as ``MindFormerConfig(path, run_mode=...)`` does in run_mindformer.py.
    """
    if isinstance(path, dict):
        raw, base = _to_plain(path), Path.cwd()
        name = "<dict>"
    else:
        raw = read_yaml(path)  # friendly errors before MindFormers sees the file
        base = Path(path).resolve().parent
        name = str(path)
    from mindformers.tools.register import MindFormerConfig

    flag_values = flags(raw) if callable(flags) else dict(flags or {})
    run_mode = {"run_mode": flag_values["run_mode"]} if flag_values.get("run_mode") else {}
    if isinstance(path, dict):
        cfg = _to_plain(MindFormerConfig(**{**raw, **run_mode}))
    else:
        try:
            cfg = _to_plain(
                MindFormerConfig(str(Path(path).resolve()), **run_mode)
                if template
                else MindFormerConfig(**{**raw, **run_mode})
            )
        except (OSError, yaml.YAMLError, TypeError, AttributeError) as exc:
            raise ConfigError(f"config {name!r}: {type(exc).__name__}: {exc}") from None
    apply_overrides(cfg, flag_values)
    apply_overrides(cfg, parse_overrides(overrides))
    _resolve_paths(cfg, base)
    try:
        resolved, entries = resolve_auto_register(cfg, register_path, register=register)
    except RegistryError as exc:
        raise RegistryError(f"{name}: {exc}") from None
    return MindFormerConfig(**resolved), entries


def detect_device_target() -> str:
    """``Ascend`` where an Ascend device node exists, else ``CPU``."""
    return "Ascend" if os.path.exists("/dev/davinci_manager") or os.path.exists("/dev/davinci0") else "CPU"
