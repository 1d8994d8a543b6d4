"""Migrate a MindFormers Llama YAML to Llama 3 / 3.1, and write a MindFormers YAML for an HF ``config.json``.

Both work on the YAML *text* (see :mod:`mf_ext.migrate.yaml_edit`): the keys the migration owns change, every
other line — user settings, comments, anchors, key order — stays byte for byte.
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
from mf_ext.migrate.presets import (
    DELETE,
    INSERT_AFTER,
    LLAMA2_BUILTIN_NAMES,
    LLAMA3_SPECIAL_TOKENS,
    PLUGIN_CLASSES,
    PRESETS,
)
from mf_ext.migrate.yaml_edit import YamlDocument, YamlEditError, format_scalar

MODEL_CONFIG = ("model", "model_config")
TOKENIZER = ("processor", "tokenizer")


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


def migrate_text(text: str, to: str, name: str = "<yaml>") -> MigrationResult:
    """Apply preset ``to`` (``llama3_8b``, ``llama3_1_8b``, ``llama3_70b``, ``llama3_1_70b``) to a MindFormers YAML."""
    if to not in PRESETS:
        close = difflib.get_close_matches(str(to), list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MigrationError(f"unknown preset {to!r}{hint}; expected one of: {', '.join(PRESETS)}")
    preset = PRESETS[to]
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
        _apply(doc, preset, notes)
        doc.check()
    except YamlEditError as exc:
        raise MigrationError(str(exc)) from None
    return MigrationResult(text=doc.text, data=doc.data, notes=notes)


def _apply(doc: YamlDocument, preset, notes: list[str]) -> None:
    mc = MODEL_CONFIG
    for key, value in preset.model_config.items():
        if value is DELETE:
            doc.delete((*mc, key))
        else:
            doc.set((*mc, key), value, after=INSERT_AFTER.get(key, ()))
    # A Llama 2 built-in name here would make MindFormers fetch Llama 2 weights into the Llama 3 network.
    if doc.get((*mc, "checkpoint_name_or_path")) in LLAMA2_BUILTIN_NAMES:
        doc.set((*mc, "checkpoint_name_or_path"), "")
    if str(doc.get(("trainer", "model_name"), "")).startswith(("llama2", "llama_")):
        doc.set(("trainer", "model_name"), preset.name)
    # Classes: MindFormers' built-in Llama has no Llama 3.1 rope scaling; the plug-in's classes do.
    for section, (cls, ref) in PLUGIN_CLASSES.items():
        if section == TOKENIZER and not isinstance(doc.get(TOKENIZER), dict):
            notes.append("no processor.tokenizer in the YAML: add one (type Llama3Tokenizer) to tokenize text")
            continue
        if not isinstance(doc.get(section), dict):
            raise YamlEditError(f"{doc.name}: key {'.'.join(section)!r} (a mapping) is missing")
        doc.set((*section, "type"), cls)
        doc.set((*section, "auto_register"), ref, after=INSERT_AFTER["auto_register"])
    if isinstance(doc.get(TOKENIZER), dict):
        # Llama 2's SentencePiece markers do not exist in Llama 3's vocabulary; Llama 3 has no unknown token.
        doc.delete((*TOKENIZER, "unk_token"))
        for key, value in LLAMA3_SPECIAL_TOKENS.items():
            doc.set((*TOKENIZER, key), value, after=("vocab_file",))
        vocab = doc.get((*TOKENIZER, "vocab_file"))
        if vocab:
            notes.append(
                f"processor.tokenizer.vocab_file is still {vocab!r}: point it at the Llama 3 tokenizer.model "
                "(tiktoken BPE file), not Llama 2's SentencePiece model"
            )
    if doc.get(("load_checkpoint",)):
        notes.append(f"load_checkpoint is still {doc.get(('load_checkpoint',))!r}: Llama 2 weights do not fit Llama 3")


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
# MindFormers config for {source}, written by `mf-ext migrate --hf_config`.
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
    type: {config_type}
    auto_register: {config_ref}
    batch_size: 1
    seq_length: {seq_length}
{arch}
    compute_dtype: "float32"  # float16 / bfloat16 on Ascend
    layernorm_compute_type: "float32"
    softmax_compute_type: "float32"
    rotary_dtype: "float32"
    param_init_type: {param_init_type}
    use_past: False
    use_flash_attention: False
    checkpoint_name_or_path: ""
  arch:
    type: {model_type}
    auto_register: {model_ref}

processor:
  return_tensors: ms
  tokenizer:
    vocab_file: ""            # the model's tokenizer.model (tiktoken BPE file)
    type: {tokenizer_type}
    auto_register: {tokenizer_ref}
  type: LlamaProcessor
"""

_ARCH_ORDER = (
    "hidden_size", "num_layers", "num_heads", "n_kv_heads", "vocab_size", "intermediate_size", "rms_norm_eps",
    "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embedding", "theta", "rope_scaling",
    "tie_word_embeddings", "qkv_has_bias", "attn_proj_has_bias",
)  # fmt: skip


def _default_seq_length(hf: dict[str, Any]) -> int:
    """The pre-scaling context of the model (``original_max_position_embeddings`` under RoPE scaling), capped by
    ``max_position_embeddings``: long-context scaling is opt-in, the trained context is the safe default."""
    max_pos = int(hf.get("max_position_embeddings", 2048))
    orig = (hf.get("rope_scaling") or {}).get("original_max_position_embeddings")
    return min(max_pos, int(orig)) if orig else max_pos


def hf_config_to_yaml(
    hf: dict[str, Any],
    *,
    register_path: str | Path = "research/llama3_1",
    source: str = "config.json",
    output: str = "model.yaml",
    run_mode: str = "predict",
    seq_length: int | None = None,
    base: str | None = None,
) -> str:
    """MindFormers YAML text for an HF Llama-family ``config.json`` dict.

    The architecture is mapped by the plug-in's config class (``from_hf_config`` of the class found in
    ``register_path``). With ``base`` (the text of an existing MindFormers YAML), its ``model.model_config``
    architecture fields are set and everything else in it is kept; otherwise a complete YAML is written from a
    template whose ``auto_register`` entries name the plug-in's classes.
    """
    seq_length = _default_seq_length(hf) if seq_length is None else seq_length
    try:
        refs = hfmap.plugin_references(register_path)
        arch = hfmap.hf_to_model_config(hf, register_path, source, seq_length=seq_length)
    except hfmap.HFConfigError as exc:
        raise MigrationError(str(exc)) from None
    if base is not None:
        doc = YamlDocument(base, output)
        if not isinstance(doc.get(MODEL_CONFIG), dict):
            raise MigrationError(f"{output}: key 'model.model_config' (a mapping) is missing")
        try:
            for key in hfmap.YAML_FIELDS:
                if key in arch:
                    doc.set((*MODEL_CONFIG, key), arch[key], after=INSERT_AFTER.get(key, ()))
                else:
                    doc.delete((*MODEL_CONFIG, key))
            doc.set((*MODEL_CONFIG, "seq_length"), seq_length)
            doc.check()
        except YamlEditError as exc:
            raise MigrationError(str(exc)) from None
        return doc.text
    lines = []
    for key, value in arch.items():
        if isinstance(value, dict):
            lines.append(f"    {key}:")
            lines.extend(f"      {k}: {format_scalar(v)}" for k, v in value.items())
        else:
            lines.append(f"    {key}: {format_scalar(value)}")
    dtype = hf.get("torch_dtype") or hf.get("dtype") or "float32"
    config_ref = refs["config"]
    model_ref = refs.get("model", "llama3_1_model.Llama3ForCausalLM")
    tok_ref = refs.get("tokenizer", "llama3_1_tokenizer.Llama3Tokenizer")
    text = _HF_TEMPLATE.format(
        source=source,
        output=output,
        register_path=register_path,
        run_mode=run_mode,
        model_name=format_scalar(str(hf.get("_name_or_path") or hf.get("model_type", "llama")), like='"'),
        seq_length=seq_length,
        arch="\n".join(lines),
        param_init_type=json.dumps(dtype if dtype in ("float32", "float16", "bfloat16") else "float32"),
        config_type=config_ref.rsplit(".", 1)[1],
        config_ref=config_ref,
        model_type=model_ref.rsplit(".", 1)[1],
        model_ref=model_ref,
        tokenizer_type=tok_ref.rsplit(".", 1)[1],
        tokenizer_ref=tok_ref,
    )
    written = yaml.safe_load(text)["model"]["model_config"]
    if any(written.get(k) != v for k, v in arch.items()):
        raise MigrationError(
            f"{source}: internal error: the written YAML does not hold the architecture of config.json"
        )
    return text


def yaml_to_hf_config(data: dict[str, Any], register_path: str | Path = "research/llama3_1") -> dict[str, Any]:
    """HF ``config.json`` dict for the ``model.model_config`` of a parsed MindFormers YAML (the reverse of
    :func:`hf_config_to_yaml`, through the plug-in's ``to_hf_config``)."""
    mc = (data.get("model") or {}).get("model_config") if isinstance(data, dict) else None
    if not isinstance(mc, dict):
        raise MigrationError("key 'model.model_config' (a mapping) is missing")
    try:
        return hfmap.model_config_to_hf(mc, register_path)
    except hfmap.HFConfigError as exc:
        raise MigrationError(str(exc)) from None
