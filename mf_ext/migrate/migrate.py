"""Migrate a MindFormers YAML to a family's preset, and write a MindFormers YAML for an HF ``config.json``.

Both work on the YAML *text* (see :mod:`mf_ext.migrate.yaml_edit`): the keys the migration owns change, every
other line — user settings, comments, anchors, key order — stays byte for byte. What a preset changes is the
family's data (:class:`mf_ext.migrate.presets.Preset`, declared in its folder); the HF mapping is the family's
(``Family.hf_config``).
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mf_ext.errors import MfExtError
from mf_ext.migrate import hf as hfmap
from mf_ext.migrate.presets import DELETE, INSERT_AFTER, Preset, PresetError, find_preset
from mf_ext.migrate.yaml_edit import YamlDocument, YamlEditError, format_scalar

MODEL_CONFIG = ("model", "model_config")
TOKENIZER = ("processor", "tokenizer")
# YAML section each class role of a family goes to (MindFormers' layout).
CLASS_SECTIONS = {"config": MODEL_CONFIG, "model": ("model", "arch"), "tokenizer": TOKENIZER}


class MigrationError(MfExtError, ValueError):
    """A bad input to the migration; the message is one line naming the file or key."""


@dataclass
class MigrationResult:
    text: str  # the migrated YAML
    data: dict[str, Any]  # what it parses to
    notes: list[str] = field(default_factory=list)  # things the user must still do by hand

    def diff(self, original: str, fromfile: str = "a", tofile: str = "b") -> str:
        return "".join(
            difflib.unified_diff(
                original.splitlines(True), self.text.splitlines(True), fromfile=fromfile, tofile=tofile
            )
        )


def read_yaml_text(path: str | Path) -> str:
    """The text of a YAML file whose top level is a mapping; one-line errors otherwise."""
    p = Path(path)
    if not p.is_file():
        raise MigrationError(
            f"config file {str(path)!r} does not exist" if not p.exists() else f"{str(path)!r} is not a file"
        )
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise MigrationError(f"{str(path)!r} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise MigrationError(f"{str(path)!r}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return text


def migrate_text(text: str, to: str, name: str = "<yaml>", register_path: str | Path | None = None) -> MigrationResult:
    """Apply preset ``to`` (a name a family declares, e.g. ``mf-ext migrate --help`` lists them) to a MindFormers
    YAML. ``register_path`` limits the search to that family folder (default: every built-in or installed one)."""
    from mf_ext.registry import RegistryError

    try:
        plugin, preset = find_preset(to, register_path)
    except (PresetError, RegistryError) as exc:
        raise MigrationError(str(exc)) from None
    try:
        doc = YamlDocument(text, name)
    except YamlEditError as exc:
        raise MigrationError(str(exc)) from None
    if not isinstance(doc.data, dict):
        raise MigrationError(f"{name}: expected a YAML mapping at the top level, got {type(doc.data).__name__}")
    if not isinstance(doc.get(MODEL_CONFIG), dict):
        raise MigrationError(f"{name}: key 'model.model_config' (a mapping) is missing: not a MindFormers model YAML")
    notes: list[str] = []
    try:
        apply_preset(doc, preset, plugin.family, notes)
        doc.check()
    except YamlEditError as exc:
        raise MigrationError(str(exc)) from None
    return MigrationResult(text=doc.text, data=doc.data, notes=notes)


def _set_or_delete(doc: YamlDocument, path: tuple, value, after=()) -> None:
    if value is DELETE:
        doc.delete(path)
    else:
        doc.set(path, value, after=after)


def apply_preset(doc: YamlDocument, preset: Preset, family, notes: list[str]) -> None:
    """The generic migration: the preset's model_config values, the family's classes, tokenizer keys, built-in
    checkpoint names cleared, the trainer's model name, and the preset's notes."""
    mc = MODEL_CONFIG
    for key, value in preset.model_config.items():
        _set_or_delete(doc, (*mc, key), value, after=INSERT_AFTER.get(key, ()))
    # A built-in name of the old model here would make MindFormers fetch its weights into the new network.
    if doc.get((*mc, "checkpoint_name_or_path")) in preset.clear_checkpoint_names:
        doc.set((*mc, "checkpoint_name_or_path"), "")
    if preset.model_name_prefixes and str(doc.get(("trainer", "model_name"), "")).startswith(
        tuple(preset.model_name_prefixes)
    ):
        doc.set(("trainer", "model_name"), preset.name)
    if preset.classes:
        for role, section in CLASS_SECTIONS.items():
            ref = family.class_ref(role)
            if ref is None:
                continue
            if section == TOKENIZER and not isinstance(doc.get(TOKENIZER), dict):
                notes.append(
                    f"no processor.tokenizer in the YAML: add one (type {ref.rsplit('.', 1)[1]}) to tokenize text"
                )
                continue
            if not isinstance(doc.get(section), dict):
                raise YamlEditError(f"{doc.name}: key {'.'.join(section)!r} (a mapping) is missing")
            doc.set((*section, "type"), ref.rsplit(".", 1)[1])
            doc.set((*section, "auto_register"), ref, after=INSERT_AFTER["auto_register"])
    if isinstance(doc.get(TOKENIZER), dict):
        for key, value in preset.tokenizer.items():
            _set_or_delete(doc, (*TOKENIZER, key), value, after=("vocab_file",))
    for dotted, note in preset.notes.items():
        value = doc.get(tuple(dotted.split(".")))
        if value:
            notes.append(note.format(value=value))


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename: never a partial file."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise MigrationError(f"output folder {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes 0600 files: give the result the mode a plain open() would (or the replaced file's)
        if path.exists():
            mode = path.stat().st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------------------
# HF config.json -> MindFormers YAML


def read_hf_config(path: str | Path) -> dict[str, Any]:
    """An HF ``config.json`` (or the folder holding it) as a dict; one-line errors otherwise."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise MigrationError(f"HF config {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MigrationError(f"{str(p)!r} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise MigrationError(f"{str(p)!r}: expected a JSON object, got {type(data).__name__}")
    return data


_HF_TEMPLATE = """\
# MindFormers config for {source}, written by `mf-ext migrate --hf_config` (family {family}).
#
#   python run_mindformer_ext.py --config {output} --register_path {register_path} \\
#       --load_checkpoint /path/model.ckpt --predict_data "Hello"
#
# model.model_config holds the architecture of config.json; check it with `mf-ext validate --config {output}`.

seed: 0
output_dir: './output'
load_checkpoint: ''           # a MindSpore .ckpt (e.g. from `mf-ext convert hf_to_ms`)
auto_trans_ckpt: False
only_save_strategy: False
resume_training: False
run_mode: '{run_mode}'
{use_legacy}
trainer:
  type: CausalLanguageModelingTrainer
  model_name: {model_name}

runner_config:
  epochs: 1
  batch_size: 1
  sink_mode: True
  sink_size: 1

use_parallel: False
parallel_config:
  data_parallel: 1
  model_parallel: 1
  pipeline_stage: 1
  micro_batch_num: 1
  vocab_emb_dp: True
  gradient_aggregation_group: 4

context:
  mode: 0                     # 0 graph mode, 1 PyNative mode
  device_target: "CPU"        # "Ascend" on NPUs
  max_call_depth: 10000
  device_id: 0

model:
  model_config:
{model_config}
{arch}
{processor}"""

# run settings of the family's predict YAML that describe one run, not the model: reset for the new YAML
_RUN_DEFAULTS = {"batch_size": 1}


def _default_seq_length(hf: dict[str, Any]) -> int:
    """The pre-scaling context of the model (``original_max_position_embeddings`` under RoPE scaling), capped by
    ``max_position_embeddings``: long-context scaling is opt-in, the trained context is the safe default."""
    max_pos = int(hf.get("max_position_embeddings", 2048))
    orig = (hf.get("rope_scaling") or {}).get("original_max_position_embeddings")
    return min(max_pos, int(orig)) if orig else max_pos


def _yaml_lines(mapping: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(_yaml_lines(value, indent + 2))
        else:
            lines.append(f"{pad}{key}: {format_scalar(value)}")
    return lines


def _family_predict_yaml(family) -> dict[str, Any]:
    path = family.yaml("predict")
    if path is None or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def hf_config_to_yaml(
    hf: dict[str, Any],
    *,
    register_path: str | Path | None = None,
    source: str = "config.json",
    output: str = "model.yaml",
    run_mode: str = "predict",
    seq_length: int | None = None,
    base: str | None = None,
) -> str:
    """MindFormers YAML text for an HF ``config.json`` dict.

    The family is the folder ``register_path``, else the built-in or installed family that reads ``hf``'s
    ``architectures``; its ``hf_config`` mapping gives the architecture (``arch_keys``). With ``base`` (the text of
    an existing MindFormers YAML), its ``model.model_config`` architecture fields are set and everything else in it
    is kept; otherwise a complete YAML is written whose ``auto_register`` entries name the family's ``classes`` and
    whose run settings are those of the family's predict YAML.
    """
    seq_length = _default_seq_length(hf) if seq_length is None else seq_length
    try:
        plugin = hfmap.family_plugin(register_path, hf)
        family = plugin.family
        arch = hfmap.hf_to_model_config(hf, family, source)
    except hfmap.HFConfigError as exc:
        raise MigrationError(str(exc)) from None
    if base is not None:
        doc = YamlDocument(base, output)
        if not isinstance(doc.get(MODEL_CONFIG), dict):
            raise MigrationError(f"{output}: key 'model.model_config' (a mapping) is missing")
        try:
            for key in family.arch_keys or tuple(arch):
                if key in arch:
                    doc.set((*MODEL_CONFIG, key), arch[key], after=INSERT_AFTER.get(key, ()))
                else:
                    doc.delete((*MODEL_CONFIG, key))
            doc.set((*MODEL_CONFIG, "seq_length"), seq_length)
            doc.check()
        except YamlEditError as exc:
            raise MigrationError(str(exc)) from None
        return doc.text
    predict = _family_predict_yaml(family)
    own = ((predict.get("model") or {}).get("model_config") or {}) if isinstance(predict.get("model"), dict) else {}
    dtype = hf.get("torch_dtype") or hf.get("dtype") or "float32"
    mc: dict[str, Any] = {}
    config_ref = family.class_ref("config")
    if config_ref:
        mc.update(type=config_ref.rsplit(".", 1)[1], auto_register=config_ref)
    mc.update(batch_size=1, seq_length=seq_length)
    mc.update(arch)
    for key, value in own.items():  # the family's run settings (dtypes, cache, ...), not its architecture
        if key not in mc and key not in family.arch_keys and key not in ("type", "auto_register"):
            mc[key] = _RUN_DEFAULTS.get(key, value)
    if "param_init_type" in mc:
        mc["param_init_type"] = dtype if dtype in ("float32", "float16", "bfloat16") else "float32"
    model_ref = family.class_ref("model")
    if model_ref is None:
        raise MigrationError(f"family {family.name!r} declares no model class: no YAML can build its model")
    arch_lines = ["  arch:", *_yaml_lines({"type": model_ref.rsplit(".", 1)[1], "auto_register": model_ref}, 4)]
    processor = ""
    tok_ref = family.class_ref("tokenizer")
    if tok_ref is not None:
        tok = {"vocab_file": "", "type": tok_ref.rsplit(".", 1)[1], "auto_register": tok_ref}
        proc = {"return_tensors": "ms", "tokenizer": tok}
        own_proc = predict.get("processor") if isinstance(predict.get("processor"), dict) else {}
        if own_proc.get("type"):
            proc["type"] = own_proc["type"]
        processor = "\n".join(["", "processor:", *_yaml_lines(proc, 2)]) + "\n"
    text = _HF_TEMPLATE.format(
        source=source,
        family=family.name,
        output=output,
        register_path=register_path if register_path is not None else plugin.root,
        run_mode=run_mode,
        use_legacy=f"use_legacy: {format_scalar(predict['use_legacy'])}\n" if "use_legacy" in predict else "",
        model_name=format_scalar(str(hf.get("_name_or_path") or hf.get("model_type") or family.name), like='"'),
        model_config="\n".join(_yaml_lines(mc, 4)),
        arch="\n".join(arch_lines),
        processor=processor,
    )
    written = yaml.safe_load(text)["model"]["model_config"]
    if any(written.get(k) != v for k, v in arch.items()):
        raise MigrationError(
            f"{source}: internal error: the written YAML does not hold the architecture of config.json"
        )
    return text


def yaml_to_hf_config(data: dict[str, Any], register_path: str | Path | None = None) -> dict[str, Any]:
    """HF ``config.json`` dict for the ``model.model_config`` of a parsed MindFormers YAML (the reverse of
    :func:`hf_config_to_yaml`, through the family config class's ``to_hf_config``). The family is the folder
    ``register_path``, else the one whose config class the YAML's ``model_config.auto_register`` names."""
    mc = (data.get("model") or {}).get("model_config") if isinstance(data, dict) else None
    if not isinstance(mc, dict):
        raise MigrationError("key 'model.model_config' (a mapping) is missing")
    try:
        if register_path is None:
            register_path = _family_folder_of(mc)
        return hfmap.model_config_to_hf(mc, hfmap.family_plugin(register_path).family)
    except hfmap.HFConfigError as exc:
        raise MigrationError(str(exc)) from None


def _family_folder_of(mc: dict[str, Any]):
    from mf_ext.registry import all_families

    ref = mc.get("auto_register")
    owners = [p.root for p in all_families() if ref is not None and p.family.class_ref("config") == ref]
    if len(owners) != 1:
        raise MigrationError(
            f"model.model_config.auto_register {ref!r} names no single known family's config class: pass register_path"
        )
    return owners[0]
