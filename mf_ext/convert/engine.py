"""Plan from headers, then stream: the conversion engine behind every plug-in's converters.

``hf_to_ms(spec, input, output, ...)`` and ``ms_to_hf(spec, input, output, ...)`` are the whole public surface;
a plug-in's ``convert_weight.py`` passes its :class:`~mf_ext.convert.spec.Spec`. The engine knows no family.

1. open the source (headers/index only) and its HF ``config.json``;
2. expand the spec's rules for the config (layers, flags) into concrete steps;
3. check: every step's sources exist with the shape the config implies, every source tensor is consumed
   exactly once, dtypes agree -- all before any data moves (``dry_run`` stops here and returns the plan);
4. execute the steps in source-file order, writing each target as soon as it is produced.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mf_ext.convert import dtypes
from mf_ext.convert.errors import ConversionError
from mf_ext.convert.memory import AnonPeak
from mf_ext.convert.readers import Reader, open_source
from mf_ext.convert.spec import LAYER, Drop, Fuse, Layout, Op, Rename, Spec, eval_shape
from mf_ext.convert.writers import (
    CkptWriter,
    RawCopy,
    SafetensorsDirWriter,
    Target,
    assign_shards,
    shard_names,
)

_CHUNK_BYTES = 64 * 2**20  # casts of plain renames run in row chunks of about this size

# what MindSpore/MindFormers training checkpoints store besides the network's weights
TRAINING_STATE = re.compile(
    r"^(adam_[mv]|moment[12]|accu_grads|exp_avg|exp_avg_sq)\.|"
    r"^(global_step|learning_rate|beta[12]_power|epoch_num|step_num|loss_scale|scale_sense|"
    r"current_iterator_step|last_overflow_iterator_step)$"
)


def human(n: float) -> str:
    """Bytes as ``1.23 GB`` / ``456 KB`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


@dataclass
class Step:
    kind: str  # "copy" | "op" | "fuse" | "split" | "drop"
    sources: list[str]
    targets: list[str]
    source_shapes: list[tuple[int, ...]]
    target_shapes: list[tuple[int, ...]]
    op: Op | Layout | None = None
    inverse: bool = False
    optional: bool = False
    reason: str = ""
    same_as: str | None = None  # drop steps: the tensor the dropped one must equal
    out_dtype: str = ""  # set by build_plan
    same_dtype: bool = True  # every source already has out_dtype (a pure rename copies bytes)


@dataclass
class Plan:
    direction: str
    steps: list[Step]
    targets: list[Target]
    dropped: dict[str, str]
    dims: dict[str, int]
    flags: dict[str, bool]
    source_files: list[Path]
    total_bytes: int
    peak_estimate: int
    hf_config: dict = field(default_factory=dict)
    same_checks: list[tuple[str, str]] = field(default_factory=list)  # (dropped, must equal) pairs

    def describe(self, output: str | Path, fmt: str, max_shard_bytes: int = 5 * 2**30) -> str:
        lines = [
            f"plan: {self.direction}, {len(self.steps)} steps, {len(self.targets)} output tensors, "
            f"{human(self.total_bytes)} to write -> {str(output)!r} ({fmt})",
            f"dims: {self.dims}",
            f"flags: {self.flags}",
            f"source files ({len(self.source_files)}): {', '.join(sorted(p.name for p in self.source_files))}",
        ]
        for s in self.steps:
            if s.kind == "drop":
                continue
            src = ", ".join(f"{n} {list(sh)}" for n, sh in zip(s.sources, s.source_shapes, strict=True))
            tgt = ", ".join(f"{n} {list(sh)}" for n, sh in zip(s.targets, s.target_shapes, strict=True))
            op = f" [{type(s.op).__name__}{' inverse' if s.inverse else ''}]" if s.op is not None else ""
            lines.append(f"  {s.kind:5s}{op} {src} -> {tgt}")
        tdtype = {t.name: t.dtype for t in self.targets}
        lines.append(f"output dtypes: {sorted(set(tdtype.values()))}")
        for name, why in self.dropped.items():
            lines.append(f"  drop  {name}: {why}")
        lines.append(f"output files: {', '.join(planned_files(self, output, fmt, max_shard_bytes))}")
        lines.append(f"estimated peak anonymous memory: {self.peak_estimate / 2**20:.0f} MiB")
        return "\n".join(lines)


def planned_files(plan: Plan, output: str | Path, fmt: str, max_shard_bytes: int) -> list[str]:
    """The files a conversion will write (same shard split as SafetensorsDirWriter)."""
    out = Path(output)
    if fmt == "ckpt":
        return [str(out), str(out) + ".config.json"]
    shards = shard_names(len(assign_shards(plan.targets, max_shard_bytes)))
    return [str(out / f) for f in [*shards, "model.safetensors.index.json", "config.json"]]


# ---------------------------------------------------------------------------------------------- config
def read_hf_config(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConversionError(
            f"no config.json: {str(path)!r} does not exist (needed for the model architecture)"
        ) from None
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read {str(path)!r} as JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ConversionError(f"{str(path)!r} must hold a JSON object")
    return cfg


def config_beside(ms_path: Path) -> Path:
    """Where hf_to_ms keeps the source HF config for an output: ``<out>/config.json`` or ``<out>.config.json``."""
    ms_path = Path(ms_path)
    return ms_path / "config.json" if ms_path.is_dir() else Path(str(ms_path) + ".config.json")


def find_source_config(ms_path: str | Path) -> Path | None:
    """The HF config kept beside a MindSpore checkpoint by hf_to_ms, if any."""
    p = Path(ms_path)
    for cand in (p / "config.json", Path(str(p) + ".config.json"), p.with_suffix(".config.json")):
        if cand.is_file():
            return cand
    return None


def _dims(spec: Spec, cfg: dict, cfg_path: object) -> dict[str, int]:
    try:
        dims = {k: int(v) for k, v in spec.dims(cfg).items()}
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise ConversionError(f"{str(cfg_path)!r} lacks what a {spec.name!r} model needs: {e!r}") from None
    if "layers" not in dims:
        raise ConversionError(f"spec {spec.name!r}: dims() must provide 'layers'")
    return dims


# ---------------------------------------------------------------------------------------------- planning
def _active(rule, flags: dict[str, bool]) -> bool:
    # ``when="a+b"``: all of the flags must be set
    if rule.when is not None and not all(flags.get(w, False) for w in rule.when.split("+")):
        return False
    if rule.unless is not None and flags.get(rule.unless, False):
        return False
    return True


def _expand(name: str, layer: int | None) -> str:
    return name.replace(LAYER, str(layer)) if layer is not None else name


def _layers_of(rule, n: int) -> list[int | None]:
    names = [rule.hf] if isinstance(rule.hf, str) else list(rule.hf)
    names.append(getattr(rule, "ms", ""))
    return list(range(n)) if any(LAYER in x for x in names) else [None]


def _steps(rules, dims, flags, direction: str) -> list[Step]:
    steps = []
    for rule in rules:
        if not _active(rule, flags):
            continue
        for layer in _layers_of(rule, dims["layers"]):
            if isinstance(rule, Drop):
                if direction == ("hf_to_ms" if rule.side == "hf" else "ms_to_hf"):
                    steps.append(
                        Step(
                            "drop",
                            [_expand(rule.name, layer)],
                            [],
                            [()],
                            [],
                            optional=rule.optional,
                            reason=rule.reason,
                            same_as=_expand(rule.same_as, layer) if rule.same_as else None,
                        )
                    )
                continue
            if isinstance(rule, Rename):
                hf_shape = eval_shape(rule.shape, dims)
                ms_shape = rule.op.shape(hf_shape, dims) if rule.op else hf_shape
                hf, ms = _expand(rule.hf, layer), _expand(rule.ms, layer)
                kind = "op" if rule.op else "copy"
                if direction == "hf_to_ms":
                    steps.append(Step(kind, [hf], [ms], [hf_shape], [ms_shape], rule.op, False, rule.optional))
                else:
                    steps.append(Step(kind, [ms], [hf], [ms_shape], [hf_shape], rule.op, True, rule.optional))
            elif isinstance(rule, Fuse):
                hf_shapes = [eval_shape(s, dims) for s in rule.shapes]
                ms_shape = rule.layout.shape(hf_shapes, dims)
                hfs = [_expand(h, layer) for h in rule.hf]
                ms = _expand(rule.ms, layer)
                if direction == "hf_to_ms":
                    steps.append(Step("fuse", hfs, [ms], hf_shapes, [ms_shape], rule.layout, False, rule.optional))
                else:
                    steps.append(Step("split", [ms], hfs, [ms_shape], hf_shapes, rule.layout, True, rule.optional))
    return steps


def _fmt_names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def build_plan(
    spec: Spec,
    reader: Reader,
    cfg: dict,
    cfg_path: object,
    direction: str,
    *,
    options: dict[str, bool],
    dtype: str | None,
    rules=None,
    dims=None,
) -> Plan:
    dims = dims if dims is not None else _dims(spec, cfg, cfg_path)
    flags = dict(spec.flags(cfg))
    flags.update({k: bool(v) for k, v in options.items()})
    steps = _steps(spec.rules if rules is None else rules, dims, flags, direction)
    available = reader.tensors
    consumed: dict[str, str] = {}
    missing: list[str] = []
    kept: list[Step] = []
    dropped: dict[str, str] = {}
    same_checks: list[tuple[str, str]] = []
    for s in steps:
        present = [n for n in s.sources if n in available]
        if not present and s.optional:
            continue
        absent = [n for n in s.sources if n not in available]
        if absent:
            missing.extend(absent)
            continue
        for n in s.sources:
            if n in consumed:
                raise ConversionError(f"spec {spec.name!r} consumes tensor {n!r} twice")
            consumed[n] = s.kind
        if s.kind == "drop":
            dropped[s.sources[0]] = s.reason
            if s.same_as:
                same_checks.append((s.sources[0], s.same_as))
            continue
        kept.append(s)
    src_desc = str(reader.files[0].parent if len(reader.files) > 1 else reader.files[0]) if reader.files else "?"
    unexpected = [n for n in available if n not in consumed]
    if missing:
        also = f"; also unexpected: {_fmt_names(unexpected, 4)}" if unexpected else ""
        raise ConversionError(
            f"missing tensors in {src_desc!r} for a {spec.name!r} model with "
            f"{dims['layers']} layers: {_fmt_names(missing)}{also}"
        )
    if unexpected:
        raise ConversionError(
            f"unexpected tensors in {src_desc!r} (not in the {spec.name!r} mapping; is this "
            f"checkpoint of another model or format?): {_fmt_names(unexpected)}"
        )
    # shapes and dtypes against the config
    targets: list[Target] = []
    peak = 0
    for s in kept:
        src_dtypes = set()
        for n, want in zip(s.sources, s.source_shapes, strict=True):
            info = available[n]
            if tuple(info.shape) != tuple(want):
                raise ConversionError(
                    f"tensor {n!r} has shape {list(info.shape)} but {str(cfg_path)!r} implies "
                    f"{list(want)} (dims {dims})"
                )
            src_dtypes.add(info.dtype)
        if len(src_dtypes) > 1 and dtype is None:
            raise ConversionError(
                f"tensors {_fmt_names(s.sources)} have different dtypes {sorted(src_dtypes)}; "
                f"pass --dtype to choose one"
            )
        out_dtype = dtype or src_dtypes.pop()
        step_bytes = 0
        s.out_dtype = out_dtype
        s.same_dtype = all(available[n].dtype == out_dtype for n in s.sources)
        raw = s.kind == "copy" and s.same_dtype and bool(available[s.sources[0]].ranges)
        for n, shape in zip(s.targets, s.target_shapes, strict=True):
            t = Target(n, out_dtype, tuple(shape), available[s.sources[0]].file if raw else None)
            targets.append(t)
            step_bytes += t.nbytes
        if s.kind == "copy" and s.same_dtype:
            need = 0  # bytes move file to file
        elif s.kind in ("copy", "fuse", "split"):
            need = 3 * _CHUNK_BYTES  # streamed in pieces (cast chunk, interleave buffer)
        else:  # whole-tensor op (transpose, rotary permute): output plus a float32 cast of it at worst
            need = 3 * step_bytes
        peak = max(peak, need)
    # read sources in file order: sequential IO, and each shard's pages can be dropped once passed
    order = sorted(range(len(kept)), key=lambda i: min(available[n].sort_key for n in kept[i].sources))
    kept = [kept[i] for i in order]
    by_name = {t.name: t for t in targets}
    if len(by_name) != len(targets):
        raise ConversionError(f"spec {spec.name!r} produces some tensor twice")
    targets = [by_name[n] for s in kept for n in s.targets]
    total = sum(t.nbytes for t in targets)
    plan = Plan(direction, kept, targets, dropped, dims, flags, list(reader.files), total, peak + 64 * 2**20, cfg)
    plan.same_checks = same_checks
    return plan


# ---------------------------------------------------------------------------------------------- execution
def _produce(step: Step, reader: Reader, dims: dict[str, int]):
    """Yield (target index, payload) for one step; payloads are RawCopy, an array, or a generator of pieces."""
    out_dtype, same = step.out_dtype, step.same_dtype
    if step.kind == "copy":
        info = reader.tensors[step.sources[0]]
        if same and info.ranges:
            yield 0, RawCopy(info.file, list(info.ranges))
            return
        arr = reader.array(step.sources[0])
        yield 0, arr if same else _cast_rows(arr, info.dtype, out_dtype, step.sources[0])
        return
    arrays = [reader.array(n) for n in step.sources]
    src_dtypes = [reader.tensors[n].dtype for n in step.sources]
    if step.kind == "op":
        arr = step.op.inverse(arrays[0], dims) if step.inverse else step.op.forward(arrays[0], dims)
        yield 0, _cast_rows(arr, src_dtypes[0], out_dtype, step.targets[0])
    elif step.kind == "fuse":
        pieces = step.op.fuse_chunks(arrays, dims, _CHUNK_BYTES)
        if not same:
            # cast piece by piece; name the fused target (the overflow message also says the dtypes)
            pieces = (dtypes.cast(p, src_dtypes[0], out_dtype, step.targets[0]) for p in pieces)
        yield 0, pieces
    elif step.kind == "split":
        for i, pieces in enumerate(step.op.split_chunks(arrays[0], list(step.target_shapes), dims, _CHUNK_BYTES)):
            if not same:
                pieces = (dtypes.cast(p, src_dtypes[0], out_dtype, step.targets[i]) for p in pieces)
            yield i, pieces


def _cast_rows(arr: np.ndarray, src: str, dst: str, name: str):
    """Cast in row chunks of about _CHUNK_BYTES (a generator of pieces), so memory stays at one chunk."""
    if src == dst:
        yield arr
        return
    if arr.ndim == 0 or arr.nbytes <= _CHUNK_BYTES:
        yield dtypes.cast(arr, src, dst, name)
        return
    rows = max(1, _CHUNK_BYTES // max(1, arr[0].nbytes))
    for a in range(0, arr.shape[0], rows):
        yield dtypes.cast(arr[a : a + rows], src, dst, name)


def _execute(plan: Plan, reader: Reader, writer, progress: bool, desc: str) -> None:
    from tqdm import tqdm

    bar = tqdm(
        total=plan.total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    writer._progress = bar.update
    for dropped, ref in plan.same_checks:
        a, b = reader.array(dropped), reader.array(ref)
        if (
            a.shape != b.shape
            or a.dtype != b.dtype
            or not np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
        ):
            bar.close()
            raise ConversionError(
                f"tensor {dropped!r} differs from {ref!r}, but it would be dropped as "
                f"{plan.dropped[dropped]!r}; fix tie_word_embeddings in config.json"
            )
    try:
        writer.begin(plan.targets)
        by_name = {t.name: t for t in plan.targets}
        for step in plan.steps:
            for i, payload in _produce(step, reader, plan.dims):
                writer.write(by_name[step.targets[i]], payload)
        writer.commit()
    except OSError as e:  # disk full, file too large, permission changed under us ...
        writer.abort()
        raise ConversionError(f"cannot write output {str(writer.path)!r}: {e.strerror or e}") from None
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()


@dataclass
class Result:
    output: Path
    plan: Plan
    seconds: float
    bytes_written: int
    peak_anon: int
    lora: Result | None = None  # the PEFT adapter export, when the input held LoRA tensors

    def summary(self) -> str:
        gbs = self.bytes_written / max(self.seconds, 1e-9) / 1e9
        return (
            f"wrote {human(self.bytes_written)} ({len(self.plan.targets)} tensors) to "
            f"{str(self.output)!r} in {self.seconds:.2f} s = {gbs:.2f} GB/s; "
            f"peak anonymous memory {self.peak_anon / 2**20:.0f} MiB"
        )


def _timed_execute(plan: Plan, reader, writer, progress: bool, label: str, out: Path) -> Result:
    """Run a plan through a writer, measuring wall time and peak anonymous memory."""
    with AnonPeak() as mem:
        t0 = time.perf_counter()
        _execute(plan, reader, writer, progress, label)
        secs = time.perf_counter() - t0
    return Result(out, plan, secs, writer.bytes_written, mem.peak)


def _prepare_output(output: Path) -> None:
    """Fail early, before any work, if the output cannot be written: its nearest existing folder must be writable.

    Missing folders are created by the writer (``mkdir -p``) and removed again if the conversion fails.
    """
    parent = output.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConversionError(f"output folder {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK):
        raise ConversionError(f"output folder {str(parent)!r} is not writable")


def _resolve_dtype(dtype) -> str | None:
    return None if dtype in (None, "", "none", "None") else dtypes.canonical(dtype)


def _hf_input_config(spec: Spec, inp: Path, reader: Reader, hf_config) -> tuple[dict, object]:
    if hf_config is not None:
        if isinstance(hf_config, dict):
            return hf_config, "hf_config"
        return read_hf_config(Path(hf_config)), hf_config
    base = inp if inp.is_dir() else inp.parent
    if reader.format == "meta":
        params = base / "params.json"
        if spec.hf_config_from_meta is None:
            raise ConversionError(f"spec {spec.name!r} does not support Meta consolidated checkpoints")
        shapes = {n: t.shape for n, t in reader.tensors.items()}
        return spec.hf_config_from_meta(read_hf_config(params), shapes), params
    return read_hf_config(base / "config.json"), base / "config.json"


def hf_to_ms(
    spec: Spec,
    input_path,
    output_path,
    dtype=None,
    *,
    format: str = "ckpt",
    qkv_concat: bool = False,
    dry_run: bool = False,
    hf_config=None,
    progress: bool = True,
    max_shard_bytes: int = 5 * 2**30,
    print_fn=print,
    **options,
) -> Result | Plan:
    """Convert an HF checkpoint (safetensors / .bin / Meta .pth) to MindSpore names (``.ckpt`` or safetensors)."""
    inp, out = Path(input_path), Path(output_path)
    if format not in ("ckpt", "safetensors"):
        raise ConversionError(f"unknown output format {format!r}; expected 'ckpt' or 'safetensors'")
    reader = open_source(inp, meta_concat_dim=spec.meta_concat_dim)
    try:
        cfg, cfg_path = _hf_input_config(spec, inp, reader, hf_config)
        opts = {"qkv_concat": qkv_concat, **options}
        rules = spec.meta_rules if reader.format == "meta" else None
        if reader.format == "meta" and not rules:
            raise ConversionError(f"spec {spec.name!r} does not support Meta consolidated checkpoints")
        if reader.format == "meta" and qkv_concat:
            raise ConversionError(
                "qkv_concat from a Meta consolidated checkpoint is not supported; convert "
                "without it, or convert the HF release"
            )
        plan = build_plan(
            spec, reader, cfg, cfg_path, "hf_to_ms", options=opts, dtype=_resolve_dtype(dtype), rules=rules
        )
        if dry_run:
            print_fn(plan.describe(out, format, max_shard_bytes))
            return plan
        _prepare_output(out)
        gen = (inp if inp.is_dir() else inp.parent) / "generation_config.json"
        gen_cfg = json.loads(gen.read_text()) if gen.is_file() else None
        if format == "ckpt":
            sidecars = {config_beside(out): cfg}
            if gen_cfg is not None:
                sidecars[Path(str(out) + ".generation_config.json")] = gen_cfg
            writer = CkptWriter(out, sidecars=sidecars)
        else:
            extra = {"config.json": cfg}
            if gen_cfg is not None:
                extra["generation_config.json"] = gen_cfg
            writer = SafetensorsDirWriter(
                out, max_shard_bytes=max_shard_bytes, metadata={"format": "ms"}, always_index=True, extra_files=extra
            )
        return _timed_execute(plan, reader, writer, progress, "hf_to_ms", out)
    finally:
        reader.close()


def ms_to_hf(
    spec: Spec,
    input_path,
    output_path,
    dtype=None,
    *,
    qkv_concat: bool | None = None,
    dry_run: bool = False,
    hf_config=None,
    ms_config=None,
    progress: bool = True,
    max_shard_bytes: int = 5 * 2**30,
    print_fn=print,
    lora_output=None,
    lora_alpha: float = 16,
    **options,
) -> Result | Plan:
    """Convert a MindSpore checkpoint (``.ckpt`` or safetensors dir) to an HF folder ``from_pretrained`` loads.

    The architecture comes from ``hf_config`` (a config.json path or dict), else the config hf_to_ms kept beside
    the input, else ``ms_config`` (a MindFormers model_config dict / YAML path, via the spec). ``qkv_concat``
    defaults to whatever the checkpoint holds. LoRA tensors (MindPet ``*_lora_a/b``) are exported as a PEFT
    adapter to ``lora_output`` (default ``<output_path>_lora``) with ``lora_alpha``.
    """
    inp, out = Path(input_path), Path(output_path)
    reader = open_source(inp)
    try:
        if hf_config is not None:
            cfg, cfg_path = (
                (hf_config, "hf_config")
                if isinstance(hf_config, dict)
                else (read_hf_config(Path(hf_config)), hf_config)
            )
        elif (found := find_source_config(inp)) is not None:
            cfg, cfg_path = read_hf_config(found), found
        elif ms_config is not None:
            if spec.hf_config_from_ms is None:
                raise ConversionError(f"spec {spec.name!r} cannot derive an HF config from a MindFormers config")
            cfg, cfg_path = spec.hf_config_from_ms(_load_ms_config(ms_config)), ms_config
        else:
            raise ConversionError(
                f"no config.json beside {str(inp)!r}: pass --hf_config config.json or --config model.yaml"
            )
        if qkv_concat is None:
            qkv_concat = any(".w_qkv." in n or ".w_gate_hidden." in n for n in reader.tensors)
        from mf_ext.convert.lora import is_lora

        # a MindSpore training checkpoint also holds optimizer moments and loop counters: not model weights
        state = sorted(n for n in reader.tensors if TRAINING_STATE.match(n)) + getattr(reader, "skipped", [])
        for n in state:
            reader.tensors.pop(n, None)
        if state and not dry_run:
            print_fn(f"note: skipped {len(state)} optimizer/training-state tensors ({_fmt_names(state, 3)})")
        lora = sorted(n for n in reader.tensors if is_lora(n))
        for n in lora:  # the base model goes to the HF folder, the LoRA pairs to a PEFT adapter folder
            del reader.tensors[n]
        opts = {"qkv_concat": qkv_concat, **options}
        plan = build_plan(spec, reader, cfg, cfg_path, "ms_to_hf", options=opts, dtype=_resolve_dtype(dtype))
        if dry_run:
            print_fn(plan.describe(out, "hf safetensors", max_shard_bytes))
            return plan
        _prepare_output(out)
        out_cfg = dict(cfg)
        out_dtypes = {t.dtype for t in plan.targets}
        if len(out_dtypes) == 1:
            out_cfg["torch_dtype"] = out_dtypes.pop()
        extra: dict[str, object] = {"config.json": out_cfg}
        gen_src = Path(str(inp) + ".generation_config.json") if inp.is_file() else inp / "generation_config.json"
        if gen_src.is_file():
            extra["generation_config.json"] = json.loads(gen_src.read_text())
        elif spec.generation_config is not None:
            extra["generation_config.json"] = spec.generation_config(cfg)
        writer = SafetensorsDirWriter(
            out, max_shard_bytes=max_shard_bytes, metadata={"format": "pt"}, always_index=True, extra_files=extra
        )
        result = _timed_execute(plan, reader, writer, progress, "ms_to_hf", out)
        if lora:
            from mf_ext.convert.lora import lora_to_peft

            adapter = Path(lora_output) if lora_output else Path(str(out) + "_lora")
            lr = lora_to_peft(
                spec, inp, adapter, dtype, lora_alpha=lora_alpha, hf_config=cfg, base_model_name_or_path=str(out)
            )
            result.lora = lr
            print_fn(f"LoRA adapter ({len(lr.plan.targets)} tensors, lora_alpha={lora_alpha}) -> {str(adapter)!r}")
        return result
    finally:
        reader.close()


def _load_ms_config(ms_config) -> dict:
    if isinstance(ms_config, dict):
        return ms_config
    import yaml

    try:
        data = yaml.safe_load(Path(ms_config).read_text())
    except OSError as e:
        raise ConversionError(f"cannot read {str(ms_config)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConversionError(f"{str(ms_config)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{str(ms_config)!r} must hold a YAML mapping")
    mc = (data.get("model") or {}).get("model_config") if isinstance(data.get("model"), dict) else None
    if not isinstance(mc, dict):
        raise ConversionError(f"{str(ms_config)!r} has no 'model.model_config' mapping")
    return mc
