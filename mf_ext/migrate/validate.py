"""Check a MindFormers YAML without building the model; report every problem at once, each with its key path.

What is checked:

- top-level keys and the keys of MindFormers' fixed sections (``parallel_config``, ``runner_config``,
  ``recompute_config``, ...) against MindFormers' own config template (read from its source, no import);
- every ``type`` / ``auto_register`` a section names (model config, model, tokenizer, optimizer, lr schedule,
  callbacks, dataset, wrapper, metric, trainer) resolves to a class, and the section's keys are parameters of
  that class (``did you mean`` for near misses) with the annotated types;
- architecture consistency: heads divide the hidden size, key/value heads divide the heads, ``seq_length`` within
  the maximum positions, token ids inside the vocabulary, vocabulary at least the tokenizer's, ``rope_scaling``
  complete, model parallelism dividing the heads;
- optionally, agreement with an HF ``config.json``.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mf_ext.config import MF_EXT_TOP_LEVEL_KEYS
from mf_ext.errors import MfExtError

MODEL_CONFIG = ("model", "model_config")

# Keys that MindFormers' run scripts read from the top level but that are not in its config template.
_EXTRA_TOP_LEVEL = {
    "auto_tune", "filepath_prefix", "autotune_per_step", "use_legacy", "device_num", "local_rank",
    "load_ckpt_format", "train_precision_sync", "infer_precision_sync", "generation_config", "adapter_id",
}  # fmt: skip

# Sections whose keys MindFormers' template refuses when unknown (Config._raise_error_for_unexpected_key).
_STRICT_SECTIONS = ("parallel_config", "recompute_config", "swap_config", "moe_config", "runner_config",
                    "monitor_config")  # fmt: skip

# Section path -> MindFormerModuleType value of the class its `type` names.
_TYPED_SECTIONS: tuple[tuple[tuple, str], ...] = (
    (("model", "model_config"), "config"),
    (("model", "arch"), "models"),
    (("processor", "tokenizer"), "tokenizer"),
    (("processor",), "processor"),
    (("optimizer",), "optimizer"),
    (("lr_schedule",), "lr"),
    (("metric",), "metric"),
    (("runner_wrapper",), "wrapper"),
    (("trainer",), "trainer"),
    (("train_dataset_task",), "dataset"),
    (("eval_dataset_task",), "dataset"),
    (("train_dataset", "data_loader"), "dataset_loader"),
    (("eval_dataset", "data_loader"), "dataset_loader"),
)
_LIST_SECTIONS = (("callbacks", "callback"), ("eval_callbacks", "callback"))

# Keys MindFormers passes to (or consumes before) these builders besides the class's own parameters.
_BUILDER_KEYS = {
    "config": {"type", "auto_register", "auto_map", "checkpoint_name_or_path", "parallel_config", "moe_config"},
    "models": {"type", "auto_register"},
    "tokenizer": {"type", "auto_register"},
    "processor": {"type", "auto_register", "tokenizer", "return_tensors", "image_processor"},
    "optimizer": {"type", "auto_register", "learning_rate", "params"},
    "lr": {"type", "auto_register", "total_steps", "warmup_ratio", "warmup_steps", "learning_rate"},
    "wrapper": {"type", "auto_register", "scale_sense"},
    "dataset": {"type", "auto_register", "dataset_config"},
    "dataset_loader": {"type", "auto_register", "dataset_dir", "shuffle", "column_names"},
}
_RUN_MODES = ("train", "finetune", "eval", "predict", "predict_with_train_model")
_DEVICE_TARGETS = ("Ascend", "CPU", "GPU")


class ValidationInputError(MfExtError, ValueError):
    """The YAML cannot be checked at all (missing, unreadable, not a mapping)."""


@dataclass
class Report:
    """Errors (the YAML will not run as written) and warnings (e.g. placeholder paths), one line each."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _did_you_mean(word: str, choices) -> str:
    by_lower: dict[str, str] = {}
    for c in sorted(set(choices), key=str):  # case-insensitive: 'cpu' should find 'CPU'
        by_lower.setdefault(str(c).lower(), c)
    if str(word).lower() in by_lower:
        return f" (did you mean {by_lower[str(word).lower()]!r}?)"
    close = [by_lower[c] for c in difflib.get_close_matches(str(word).lower(), list(by_lower), n=3, cutoff=0.6)]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _fmt(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------------------------------------------
# MindFormers' config template, read from its source file (importing mindformers costs ~10 s)


def _mindformers_template() -> dict[str, set[str]]:
    """Section name -> known keys, from ``mindformers/tools/register/template.py`` (``general_config`` = top level)."""
    spec = importlib.util.find_spec("mindformers")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "tools" / "register" / "template.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    class_keys: dict[str, set[str]] = {}
    class_name_of: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            keys = set()
            for stmt in node.body:
                if isinstance(stmt, ast.Assign):
                    for t in stmt.targets:
                        if isinstance(t, ast.Name):
                            if t.id == "_name" and isinstance(stmt.value, ast.Constant):
                                class_name_of[node.name] = stmt.value.value
                            elif not t.id.startswith("_"):
                                keys.add(t.id)
            class_keys[node.name] = keys
    return {section: class_keys.get(cls, set()) for cls, section in class_name_of.items()}


# --------------------------------------------------------------------------------------------------------------
# classes and their parameters


def _params(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """Named ``__init__`` parameters over the MRO (following ``**kwargs`` up to the base classes), their type
    hints, and whether the chain ends in a ``**kwargs`` that accepts anything."""
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    open_kwargs = False
    # factories (MindFormers' AdamW) take their parameters in __new__ and define no __init__
    method = "__init__" if any("__init__" in k.__dict__ for k in cls.__mro__[:-1]) else "__new__"
    if not any(method in k.__dict__ for k in cls.__mro__[:-1]):
        return params, hints, True  # nothing to read: accept any key
    for klass in cls.__mro__:
        init = klass.__dict__.get(method)
        if isinstance(init, staticmethod):
            init = init.__func__
        if init is None or klass is object:
            continue
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            open_kwargs = True
            break
        try:
            klass_hints = typing.get_type_hints(init)
        except Exception:  # unresolvable annotations: fall back to default values' types
            klass_hints = {}
        has_kwargs = False
        for name, p in list(sig.parameters.items())[1:]:
            if p.kind is p.VAR_KEYWORD:
                has_kwargs = True
            elif p.kind is not p.VAR_POSITIONAL:
                params.setdefault(name, p)
                if name in klass_hints:
                    hints.setdefault(name, klass_hints[name])
        if not has_kwargs:
            open_kwargs = False
            break
        open_kwargs = True
    return params, hints, open_kwargs


def _popped_keys(relative_file: str, class_name: str) -> set[str]:
    """Keys ``class_name.__init__`` in MindFormers' ``relative_file`` pops from ``**kwargs`` (read from source)."""
    spec = importlib.util.find_spec("mindformers")
    if spec is None or not spec.submodule_search_locations:
        return set()
    path = Path(list(spec.submodule_search_locations)[0]) / relative_file
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                    return {
                        c.args[0].value
                        for c in ast.walk(fn)
                        if isinstance(c, ast.Call)
                        and isinstance(c.func, ast.Attribute)
                        and c.func.attr == "pop"
                        and c.args
                        and isinstance(c.args[0], ast.Constant)
                    }
    return set()


def _pretrained_config_keys() -> set[str]:
    """Keys a MindFormers model config accepts besides its own parameters: those ``PretrainedConfig`` consumes,
    and the generation settings ``GenerationConfig`` reads from the model config."""
    return _popped_keys("models/configuration_utils.py", "PretrainedConfig") | _popped_keys(
        "generation/generation_config.py", "GenerationConfig"
    )


def _config_attrs_read(cls: type) -> set[str]:
    """``config.<name>`` attributes read by the files of the plug-in that defines ``cls`` (settings its model uses
    without the config class declaring them)."""
    try:
        folder = Path(inspect.getfile(cls)).parent
    except (TypeError, OSError):
        return set()
    if "site-packages" in folder.parts:
        return set()
    names: set[str] = set()
    for f in folder.glob("*.py"):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "config":
                names.add(node.attr)
    return names


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type):
        if hint in (list, tuple):
            return isinstance(value, (list, tuple))
        # config objects (e.g. TransformerOpParallelConfig) are given as mappings in YAML
        return isinstance(value, (hint, dict))
    return True


def _hint_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return text or str(hint).replace("typing.", "").replace("NoneType", "None")


class _Resolver:
    """Finds the class a section's ``type`` / ``auto_register`` names (imports MindFormers on first use)."""

    def __init__(self, register_path):
        self.register_path = register_path
        self._plugins = None
        self._register = None

    def plugins(self):
        if self._plugins is None:
            from mf_ext.registry import load_plugin, parse_register_paths

            self._plugins = [load_plugin(p) for p in parse_register_paths(self.register_path)]
        return self._plugins

    def mf_register(self):
        if self._register is None:
            import mindformers  # noqa: F401  (fills MindFormerRegister)
            from mindformers.tools.register import MindFormerRegister

            self._register = MindFormerRegister
        return self._register

    def resolve(self, node: dict, module_type: str, path: tuple, problems: list[str]) -> type | None:
        from mf_ext.registry import RegistryError, resolve_class

        ref = node.get("auto_register")
        name = node.get("type")
        if ref is not None:
            try:
                cls, _ = resolve_class(ref, self.plugins(), _fmt((*path, "auto_register")))
            except RegistryError as exc:
                problems.append(str(exc))
                return None
            if name is not None and name != cls.__name__:
                problems.append(
                    f"{_fmt((*path, 'type'))}: {name!r} does not match the auto_register class {cls.__name__!r}"
                )
            return cls
        if name is None:
            problems.append(f"{_fmt((*path, 'type'))}: missing (the class to build)")
            return None
        if not isinstance(name, str):
            problems.append(f"{_fmt((*path, 'type'))}: expected a class name, got {name!r}")
            return None
        reg = self.mf_register()
        table = reg.registry.get(module_type, {})
        try:
            cls = reg.get_cls(module_type, name)
        except ValueError:
            cls = None
        if cls is None:
            hint = _did_you_mean(name, table)
            extra = "" if hint else "; a plug-in class needs auto_register: module.Class and --register_path"
            problems.append(
                f"{_fmt((*path, 'type'))}: {name!r} is not a registered MindFormers {module_type} class{hint}{extra}"
            )
            return None
        return cls


def _mindformers_config_keys(cls: type) -> tuple[set[str], str]:
    """Parameters of the MindFormers config class the family of ``cls`` names (``Family.mindformers_config``):
    settings a YAML written for that MindFormers class may carry over that ``cls`` ignores; and its name."""
    from mf_ext.registry import family_of

    fam = family_of(cls)
    mf_cls = fam.load_mindformers_config() if fam is not None else None
    if mf_cls is None:
        return set(), ""
    return set(_params(mf_cls)[0]), mf_cls.__name__


def _check_keys(
    node: dict, cls: type, module_type: str, path: tuple, problems: list[str], warnings: list[str] | None = None
) -> dict[str, Any]:
    """Unknown keys and wrong types of ``node`` against ``cls.__init__``; returns the effective values
    (YAML value, else the parameter's default)."""
    params, hints, open_kwargs = _params(cls)
    known = set(params) | _BUILDER_KEYS.get(module_type, {"type", "auto_register"})
    if module_type == "config":
        known |= _pretrained_config_keys() | _config_attrs_read(cls)
        open_kwargs = False  # PretrainedConfig takes any key and ignores what nothing reads: flag it
    builtin, builtin_name = _mindformers_config_keys(cls) if module_type == "config" else (set(), "")
    for key, value in node.items():
        if key not in known:
            if key in builtin and warnings is not None:
                # valid for MindFormers' own class of this family, but this class ignores it: worth knowing, not an error
                warnings.append(
                    f"{_fmt((*path, key))}: a MindFormers {builtin_name} setting that {cls.__name__} ignores"
                )
            elif not open_kwargs:
                problems.append(f"{_fmt((*path, key))}: unknown key for {cls.__name__}{_did_you_mean(key, known)}")
            continue
        hint = hints.get(key)
        if hint is None and module_type == "config" and key in params:
            default = params[key].default
            if isinstance(default, (bool, int, float, str)):
                hint = type(default)  # unannotated config parameter: its default's type
        if hint is not None and value is not None and not _type_ok(value, hint):
            extra = (
                " (YAML reads 1e-5 as a string: write 1.0e-5)" if isinstance(value, str) and _looks_float(value) else ""
            )
            problems.append(
                f"{_fmt((*path, key))}: expected {_hint_name(hint)}, got {type(value).__name__} {value!r}{extra}"
            )
    eff = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    eff.update(node)
    return eff


def _looks_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# consistency of the architecture


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _family_of_config(cls: type | None):
    if cls is None:
        return None
    from mf_ext.registry import family_of

    return family_of(cls)


def _check_model_config(
    mc: dict,
    eff: dict,
    cfg: dict,
    problems: list[str],
    tokenizer=None,
    warnings: list[str] | None = None,
    config_cls: type | None = None,
) -> None:
    p = MODEL_CONFIG
    hidden, heads = _int(eff.get("hidden_size")), _int(eff.get("num_heads"))
    kv = _int(eff.get("n_kv_heads")) if eff.get("n_kv_heads") is not None else heads
    vocab = _int(eff.get("vocab_size"))
    seq = _int(eff.get("seq_length"))
    max_pos = _int(eff.get("max_position_embedding")) or seq
    for key in (
        "hidden_size",
        "num_heads",
        "num_layers",
        "vocab_size",
        "seq_length",
        "n_kv_heads",
        "intermediate_size",
    ):
        v = mc.get(key)
        if _int(v) is not None and v <= 0:
            problems.append(f"{_fmt((*p, key))}: expected a positive number, got {v!r}")
    if hidden and heads and heads > 0 and hidden % heads and eff.get("head_dim") is None:
        problems.append(f"{_fmt((*p, 'num_heads'))}: {heads} does not divide hidden_size {hidden}")
    if heads and kv and kv > 0 and heads % kv:
        problems.append(f"{_fmt((*p, 'n_kv_heads'))}: {kv} does not divide num_heads {heads}")
    if seq and max_pos and seq > max_pos:
        problems.append(f"{_fmt((*p, 'seq_length'))}: {seq} is above max_position_embedding {max_pos}")
    if vocab:
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            ids = mc.get(key)
            for i in ids if isinstance(ids, list) else [ids]:
                if _int(i) is not None and not (0 <= i < vocab):
                    problems.append(f"{_fmt((*p, key))}: id {i} is outside the vocabulary (vocab_size {vocab})")
        if tokenizer is not None and vocab < len(tokenizer):
            problems.append(
                f"{_fmt((*p, 'vocab_size'))}: {vocab} is smaller than the tokenizer's vocabulary ({len(tokenizer)} tokens)"
            )
    if tokenizer is not None and warnings is not None:
        # a warning, not an error: the ids may differ on purpose (an instruct model stops at <|eot_id|>, not at the
        # tokenizer's eos_token) and a launcher may take the ids from config.json at run time (--convert)
        _check_token_ids(mc, tokenizer, warnings)
    fam = _family_of_config(config_cls)
    if fam is not None:  # what only the family knows (e.g. its rope scaling kinds), on YAML values over defaults
        for key, message in fam.check_model_config(eff):
            problems.append(f"{_fmt((*p, *key.split('.')) if key else p)}: {message}")
    pc = cfg.get("parallel_config")
    if isinstance(pc, dict):
        mp, pp = _int(pc.get("model_parallel")), _int(pc.get("pipeline_stage"))
        if mp and mp > 1:
            if heads and heads % mp:
                problems.append(
                    f"parallel_config.model_parallel: {mp} does not divide model.model_config.num_heads {heads}"
                )
            if kv and kv % mp:
                problems.append(
                    f"parallel_config.model_parallel: {mp} does not divide model.model_config.n_kv_heads {kv}"
                )
        layers = _int(eff.get("num_layers"))
        if pp and layers and pp > layers:
            problems.append(f"parallel_config.pipeline_stage: {pp} is more than model.model_config.num_layers {layers}")


def _check_token_ids(mc: dict, tokenizer, problems: list[str]) -> None:
    """bos/eos/pad ids of the model config against the ids of the tokenizer's own bos/eos/pad tokens."""
    for name in ("bos", "eos", "pad"):
        key = f"{name}_token_id"
        ids = mc.get(key)
        token = getattr(tokenizer, f"{name}_token", None)
        if ids is None or not isinstance(token, str):
            continue
        try:
            tid = tokenizer.convert_tokens_to_ids(token)
        except Exception:  # a tokenizer without that API: nothing to compare
            continue
        allowed = ids if isinstance(ids, list) else [ids]
        if isinstance(tid, int) and tid not in allowed:
            problems.append(
                f"{_fmt((*MODEL_CONFIG, key))}: {ids!r}, but the tokenizer's {name}_token {token!r} is id {tid}"
            )


def _build_tokenizer(
    tok_cls: type | None, tok: dict, base: Path, problems: list[str], warnings: list[str]
) -> int | None:
    """The tokenizer the YAML describes, when its files exist (building a tokenizer is cheap; building the model
    is not)."""
    if tok_cls is None:
        return None
    files = {k: v for k, v in tok.items() if k in ("vocab_file", "tokenizer_file", "merges_file") and v}
    if not files:
        return None
    kwargs = {k: v for k, v in tok.items() if k not in ("type", "auto_register")}
    for key, value in files.items():
        if not isinstance(value, str):
            problems.append(f"processor.tokenizer.{key}: expected a path, got {value!r}")
            return None
        path = Path(value) if os.path.isabs(value) else base / value
        if not path.exists():
            path = Path(value)
        if not path.exists():
            # placeholders such as "/path/tokenizer.model" are normal in shipped YAMLs: the vocabulary check is skipped
            warnings.append(
                f"processor.tokenizer.{key}: file {value!r} does not exist; tokenizer vocabulary not checked"
            )
            return None
        kwargs[key] = str(path)
    try:
        return tok_cls(**kwargs)
    except Exception as exc:  # the tokenizer's own error, in one line
        problems.append(
            f"processor.tokenizer: building {tok_cls.__name__} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        return None


# --------------------------------------------------------------------------------------------------------------


def load_yaml_mapping(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ValidationInputError(
            f"config file {str(path)!r} does not exist" if not p.exists() else f"{str(path)!r} is not a file"
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValidationInputError(f"{str(path)!r} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ValidationInputError(
            f"{str(path)!r}: expected a YAML mapping at the top level, got {type(data).__name__}"
        )
    return data


def validate_dict(cfg: dict, register_path=None, *, base: str | Path = ".", hf_config: dict | None = None) -> Report:
    """Every problem of a parsed MindFormers YAML, one line each, prefixed by its key path."""
    report = Report()
    problems = report.errors
    template = _mindformers_template()
    top_known = (template.get("general_config", set()) | set(template) | _EXTRA_TOP_LEVEL | MF_EXT_TOP_LEVEL_KEYS) - {
        "general_config"
    }
    for key in cfg:
        if template and key not in top_known:
            problems.append(f"{key}: unknown top-level key{_did_you_mean(str(key), top_known)}")
    for section in _STRICT_SECTIONS:
        node = cfg.get(section)
        if node is None or section not in template:
            continue
        if not isinstance(node, dict):
            problems.append(f"{section}: expected a mapping, got {type(node).__name__}")
            continue
        for key in node:
            if key not in template[section]:
                problems.append(f"{section}.{key}: unknown key{_did_you_mean(str(key), template[section])}")
    run_mode = cfg.get("run_mode")
    if run_mode is not None and run_mode not in _RUN_MODES:
        problems.append(
            f"run_mode: {run_mode!r} is not one of {', '.join(_RUN_MODES)}{_did_you_mean(str(run_mode), _RUN_MODES)}"
        )
    ctx = cfg.get("context")
    if isinstance(ctx, dict):
        if ctx.get("mode") not in (None, 0, 1, "auto"):
            problems.append(f"context.mode: expected 0 (graph), 1 (PyNative) or auto, got {ctx['mode']!r}")
        dt = ctx.get("device_target")
        if dt is not None and dt not in _DEVICE_TARGETS:
            problems.append(
                f"context.device_target: {dt!r} is not one of {', '.join(_DEVICE_TARGETS)}{_did_you_mean(str(dt), _DEVICE_TARGETS)}"
            )

    mc = (cfg.get("model") or {}).get("model_config") if isinstance(cfg.get("model"), dict) else None
    if not isinstance(mc, dict):
        problems.append("model.model_config: missing (a mapping with the model's architecture)")
    resolver = _Resolver(register_path)
    from mf_ext.registry import RegistryError

    try:
        resolver.plugins()
    except RegistryError as exc:
        problems.append(str(exc))
        resolver._plugins = []
    effective: dict[tuple, dict] = {}
    classes: dict[tuple, type] = {}
    sections = [(path, mt) for path, mt in _TYPED_SECTIONS]
    for name, mt in _LIST_SECTIONS:
        items = cfg.get(name)
        if isinstance(items, list):
            sections.extend(((name, i), mt) for i in range(len(items)))
        elif items is not None:
            problems.append(f"{name}: expected a list, got {type(items).__name__}")
    for path, module_type in sections:
        node: Any = cfg
        for part in path:
            node = node[part] if isinstance(node, (dict, list)) and (isinstance(part, int) or part in node) else None
            if node is None:
                break
        if node is None:
            continue
        if not isinstance(node, dict):
            problems.append(f"{_fmt(path)}: expected a mapping, got {type(node).__name__}")
            continue
        if path == ("processor",) and "type" not in node:
            continue
        cls = resolver.resolve(node, module_type, path, problems)
        if cls is None:
            continue
        classes[path] = cls
        effective[path] = _check_keys(node, cls, module_type, path, problems, report.warnings)
    tok = (cfg.get("processor") or {}).get("tokenizer") if isinstance(cfg.get("processor"), dict) else None
    tokenizer = None
    if isinstance(tok, dict):
        tokenizer = _build_tokenizer(
            classes.get(("processor", "tokenizer")), tok, Path(base), problems, report.warnings
        )
    if isinstance(mc, dict):
        cfg_cls = classes.get(MODEL_CONFIG)
        _check_model_config(
            mc, effective.get(MODEL_CONFIG, mc), cfg, problems, tokenizer, report.warnings, config_cls=cfg_cls
        )
        fam = _family_of_config(cfg_cls)
        if hf_config is not None:
            from mf_ext.migrate.hf import HFConfigError, compare_arch

            if fam is None or fam.hf_config is None:
                problems.append(
                    "--hf_config: the YAML's model.model_config class belongs to no family with an HF mapping "
                    "(family.py hf_config): nothing to compare"
                )
            else:
                try:
                    problems.extend(compare_arch(mc, hf_config, fam))
                except (HFConfigError, ValueError, TypeError) as exc:
                    problems.append(f"--hf_config: {exc}")
    return report


def validate_file(path: str | os.PathLike, register_path=None, hf_config: str | None = None) -> Report:
    """Every problem of the YAML at ``path``, one line each; raises ``ValidationInputError`` if it cannot be read."""
    cfg = load_yaml_mapping(path)
    hf = None
    if hf_config is not None:
        from mf_ext.migrate.migrate import MigrationError, read_hf_config

        try:
            hf = read_hf_config(hf_config)
        except MigrationError as exc:
            raise ValidationInputError(str(exc)) from None
    return validate_dict(cfg, register_path, base=Path(path).resolve().parent, hf_config=hf)
