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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mf_ext.convert import dtypes
from mf_ext.convert.errors import ConversionError
from mf_ext.convert.memory import AnonPeak
from mf_ext.convert.readers import Reader, dequantize, open_source
from mf_ext.convert.spec import (
    EXPERT,
    LAYER,
    RULE_TYPES,
    Drop,
    Fuse,
    Layout,
    Op,
    Option,
    Regroup,
    Rename,
    Spec,
    Split,
    Stack,
    eval_shape,
    rule_names,
)
from mf_ext.convert.train_state import train_state
from mf_ext.convert.writers import (
    CkptWriter,
    RawCopy,
    SafetensorsDirWriter,
    Target,
    assign_shards,
    shard_names,
)

_CHUNK_BYTES = 64 * 2**20  # casts of plain renames run in row chunks of about this size


def human(n: float) -> str:
    """Bytes as ``1.23 GB`` / ``456 KB`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


@dataclass
class Grouping:
    """How the tensors of a fuse/split/regroup step hold named parts (from Fuse, Split and Regroup rules)."""

    part_shapes: list[tuple[int, ...]]
    src: list[list[int]]  # the parts each source tensor holds, in order
    dst: list[list[int]]  # the parts each target tensor holds, in order
    src_layout: Layout
    dst_layout: Layout


@dataclass
class Stacking:
    """A stack/unstack step: per expert, ``parts`` HF tensors packed with ``layout`` into ``block_in``, then ``op``
    gives ``block``; the MindSpore tensor holds ``experts`` blocks back to back."""

    experts: int
    parts: int
    part_shapes: list[tuple[int, ...]]
    block_in: tuple[int, ...]
    block: tuple[int, ...]
    layout: Layout | None
    op: Op | None


@dataclass
class Step:
    kind: str  # "copy" | "op" | "fuse" | "split" | "regroup" | "stack" | "unstack" | "drop"
    sources: list[str]
    targets: list[str]
    source_shapes: list[tuple[int, ...]]
    target_shapes: list[tuple[int, ...]]
    op: Op | Layout | None = None
    inverse: bool = False
    optional: bool = False
    reason: str = ""
    same_as: str | None = None  # drop steps: the tensor the dropped one must equal
    prefix: bool = False  # drop steps: sources[0] is a name prefix (every remaining tensor under it is dropped)
    grouping: Grouping | None = None
    stacking: Stacking | None = None
    out_dtype: str = ""  # set by build_plan
    same_dtype: bool = True  # every source already has out_dtype (a pure rename copies bytes)


def _side(names: list[str], shapes: list[tuple[int, ...]], stacking: Stacking | None, hf_side: bool) -> str:
    if stacking is not None and hf_side and len(names) > stacking.parts:  # E experts: show the first and last
        k = stacking.parts
        first = ", ".join(f"{n} {list(sh)}" for n, sh in zip(names[:k], shapes[:k], strict=True))
        return f"{first} ... {', '.join(names[-k:])} ({stacking.experts} experts)"
    return ", ".join(f"{n} {list(sh)}" for n, sh in zip(names, shapes, strict=True))


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
    dequantised: list[tuple[str, str]] = field(default_factory=list)  # (fp8 weight, its block scales)

    def describe(self, output: str | Path, fmt: str, max_shard_bytes: int = 5 * 2**30) -> str:
        lines = [
            f"plan: {self.direction}, {len(self.steps)} steps, {len(self.targets)} output tensors, "
            f"{human(self.total_bytes)} to write -> {str(output)!r} ({fmt})",
            f"dims: {self.dims}",
            f"flags: {self.flags}",
            f"source files ({len(self.source_files)}): {', '.join(sorted(p.name for p in self.source_files))}",
        ]
        if self.dequantised:
            lines.append(
                f"dequant: {len(self.dequantised)} float8_e4m3fn weights with their block scales "
                f"(e.g. {self.dequantised[0][1]!r})"
            )
        for s in self.steps:
            if s.kind == "drop":
                continue
            src = _side(s.sources, s.source_shapes, s.stacking, s.kind == "stack")
            tgt = _side(s.targets, s.target_shapes, s.stacking, s.kind == "unstack")
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


# ---------------------------------------------------------------------------------------------- options
def resolve_options(
    spec_name: str, declared: dict[str, Option], given: dict, names=None, where: str = ""
) -> dict[str, bool]:
    """The value of every option ``declared``: ``given`` by the user, else detected from ``names`` (ms->hf, the
    MindSpore checkpoint's tensor names), else the default. An option the spec does not declare is refused when
    it is switched on (``None``/``False`` only say "not asked")."""
    for key, value in given.items():
        if key not in declared and value not in (None, False):
            listed = ", ".join(repr(k) for k in sorted(declared)) or "none"
            raise ConversionError(
                f"option {key!r} is not supported by the {spec_name!r} converter{where}; its options: {listed}"
            )
    out = {}
    for key, opt in declared.items():
        value = given.get(key)
        if value is None:
            value = opt.detect(names) if (names is not None and opt.detect is not None) else opt.default
        out[key] = bool(value)
    return out


# ---------------------------------------------------------------------------------------------- planning
def _holds(expr: str, flags: dict[str, bool]) -> bool:
    # ``"a+!b"``: flag a set and flag b not set
    return all(
        not flags.get(t[1:], False) if t.startswith("!") else flags.get(t, False)
        for t in (x.strip() for x in expr.split("+"))
    )


def _active(rule, flags: dict[str, bool]) -> bool:
    if rule.when is not None and not _holds(rule.when, flags):
        return False
    if rule.unless is not None and _holds(rule.unless, flags):
        return False
    return True


def _x(name: str, layer: int | None, expert: int | None = None) -> str:
    if layer is not None:
        name = name.replace(LAYER, str(layer))
    if expert is not None:
        name = name.replace(EXPERT, str(expert))
    return name


def _layers_of(rule, n: int, cfg: dict, where: str) -> list[int | None]:
    if not any(LAYER in x for x in rule_names(rule)):
        return [None]
    if rule.layers is None:
        return list(range(n))
    try:
        return [i for i in range(n) if rule.layers(i, cfg)]
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"{where}: its layers= filter cannot read the model config: {e!r}") from None


def _experts_of(rule, dims: dict[str, int], where: str) -> list[int | None]:
    # {E} outside a Stack: one tensor per expert on both sides (an unstacked layout)
    if isinstance(rule, Stack) or not any(EXPERT in x for x in rule_names(rule)):
        return [None]
    if "experts" not in dims:
        raise ConversionError(f"{where}: names with {EXPERT} need dims()['experts']")
    return list(range(dims["experts"]))


def _group_shape(layout: Layout, held: list[int], parts: list[tuple[int, ...]], dims) -> tuple[int, ...]:
    if len(held) == 1:
        return parts[held[0]]
    return layout.shape([parts[i] for i in held], dims)


def _grouped(direction, hf_names, ms_names, parts, hf_held, ms_held, hf_layout, ms_layout, dims, optional) -> Step:
    """One fuse/split/regroup step for either direction."""
    if direction == "hf_to_ms":
        src, dst, sh, dh, sl, dl = hf_names, ms_names, hf_held, ms_held, hf_layout, ms_layout
    else:
        src, dst, sh, dh, sl, dl = ms_names, hf_names, ms_held, hf_held, ms_layout, hf_layout
    g = Grouping(parts, sh, dh, sl, dl)
    src_shapes = [_group_shape(sl, h, parts, dims) for h in sh]
    dst_shapes = [_group_shape(dl, h, parts, dims) for h in dh]
    if len(dst) == 1 and all(len(h) == 1 for h in sh):
        kind, op = "fuse", dl
    elif len(src) == 1 and all(len(h) == 1 for h in dh):
        kind, op = "split", sl
    else:
        kind, op = "regroup", None
    return Step(kind, src, dst, src_shapes, dst_shapes, op, direction == "ms_to_hf", optional, grouping=g)


def _compile(rule, layer, expert, dims, direction: str) -> list[Step]:
    """The steps one rule gives for one layer (and expert) in one direction."""

    def x(name):
        return _x(name, layer, expert)

    hf_to_ms = direction == "hf_to_ms"
    if isinstance(rule, Drop):
        if direction != ("hf_to_ms" if rule.side == "hf" else "ms_to_hf"):
            return []
        prefix = rule.name.endswith("*")
        name = x(rule.name.removesuffix("*"))
        same = x(rule.same_as) if rule.same_as else None
        return [Step("drop", [name], [], [()], [], optional=rule.optional, reason=rule.reason, same_as=same,
                     prefix=prefix)]  # fmt: skip
    if isinstance(rule, Rename):
        hf_shape = eval_shape(rule.shape, dims)
        ms_shape = rule.op.shape(hf_shape, dims) if rule.op else hf_shape
        hf, ms = x(rule.hf), x(rule.ms)
        kind = "op" if rule.op else "copy"
        if hf_to_ms:
            return [Step(kind, [hf], [ms], [hf_shape], [ms_shape], rule.op, False, rule.optional)]
        return [Step(kind, [ms], [hf], [ms_shape], [hf_shape], rule.op, True, rule.optional)]
    if isinstance(rule, Fuse):
        parts = [eval_shape(s, dims) for s in rule.shapes]
        n = len(parts)
        return [_grouped(direction, [x(h) for h in rule.hf], [x(rule.ms)], parts, [[i] for i in range(n)],
                         [list(range(n))], rule.layout, rule.layout, dims, rule.optional)]  # fmt: skip
    if isinstance(rule, Split):
        parts = [eval_shape(s, dims) for s in rule.shapes]
        n = len(parts)
        return [_grouped(direction, [x(rule.hf)], [x(m) for m in rule.ms], parts, [list(range(n))],
                         [[i] for i in range(n)], rule.layout, rule.layout, dims, rule.optional)]  # fmt: skip
    if isinstance(rule, Regroup):
        keys = list(rule.parts)
        parts = [eval_shape(rule.parts[k], dims) for k in keys]
        hf_held = [[keys.index(p) for p in ps] for ps in rule.hf.values()]
        ms_held = [[keys.index(p) for p in ps] for ps in rule.ms.values()]
        return [_grouped(direction, [x(h) for h in rule.hf], [x(m) for m in rule.ms], parts, hf_held, ms_held,
                         rule.hf_layout, rule.ms_layout, dims, rule.optional)]  # fmt: skip
    if isinstance(rule, Stack):
        if rule.experts not in dims:
            raise ConversionError(f"Stack over {rule.ms!r} needs dims()[{rule.experts!r}] (the expert count)")
        n_exp = dims[rule.experts]
        parts = [eval_shape(s, dims) for s in rule.part_shapes]
        block_in = parts[0] if len(parts) == 1 else rule.layout.shape(parts, dims)
        block = rule.op.shape(block_in, dims) if rule.op else block_in
        ms_shape = (n_exp, *block)
        if rule.ms_shape is not None:
            declared = eval_shape(rule.ms_shape, dims)
            if np.prod(declared, dtype=np.int64) != np.prod(ms_shape, dtype=np.int64):
                raise ConversionError(
                    f"Stack over {rule.ms!r}: declared ms_shape {list(declared)} does not hold {n_exp} expert "
                    f"blocks of {list(block)}"
                )
            ms_shape = declared
        hf = [_x(h, layer, e) for e in range(n_exp) for h in rule.hf_names]
        hf_shapes = [p for _ in range(n_exp) for p in parts]
        st = Stacking(n_exp, len(parts), parts, tuple(block_in), tuple(block), rule.layout, rule.op)
        if hf_to_ms:
            return [Step("stack", hf, [x(rule.ms)], hf_shapes, [ms_shape], rule.op, False, rule.optional,
                         stacking=st)]  # fmt: skip
        return [Step("unstack", [x(rule.ms)], hf, [ms_shape], hf_shapes, rule.op, True, rule.optional,
                     stacking=st)]  # fmt: skip
    raise ConversionError(f"unknown rule type {type(rule).__name__!r}")


def _steps(rules, dims, flags, direction: str, cfg: dict | None = None, spec_name: str = "?") -> list[Step]:
    """Expand rules for a config (layers, experts, flags) into concrete steps of one direction."""
    known = ", ".join(t.__name__ for t in RULE_TYPES)
    steps = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, RULE_TYPES):  # Spec() already refuses these; rules may also come from elsewhere
            raise ConversionError(
                f"spec {spec_name!r}: rule {i} is of unknown type {type(rule).__name__!r}; known: {known}"
            )
        if not _active(rule, flags):
            continue
        where = f"spec {spec_name!r}: rule {i} ({type(rule).__name__} {rule_names(rule)[0]!r})"
        for layer in _layers_of(rule, dims["layers"], cfg or {}, where):
            for expert in _experts_of(rule, dims, where):
                steps.extend(_compile(rule, layer, expert, dims, direction))
    return steps


def _fmt_names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _nbytes(dtype: str, shape) -> int:
    n = dtypes.itemsize(dtype)
    for d in shape:
        n *= d
    return n


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
    """Check the conversion from headers alone and order its steps (see the module docstring)."""
    dims = dims if dims is not None else _dims(spec, cfg, cfg_path)
    flags = dict(spec.flags(cfg))
    flags.update({k: bool(v) for k, v in options.items()})
    steps = _steps(spec.rules if rules is None else rules, dims, flags, direction, cfg, spec.name)
    available = reader.tensors
    consumed: dict[str, str] = {}
    missing: list[str] = []
    kept: list[Step] = []
    dropped: dict[str, str] = {}
    same_checks: list[tuple[str, str]] = []
    # named tensors first; prefix drops then take whatever is left under their prefix
    for s in [s for s in steps if not s.prefix] + [s for s in steps if s.prefix]:
        if s.prefix:
            under = [n for n in available if n.startswith(s.sources[0]) and n not in consumed]
            if not under and not s.optional:
                missing.append(s.sources[0] + "*")
            for n in under:
                consumed[n] = "drop"
                dropped[n] = s.reason
            continue
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
        if raw:
            need = 0  # bytes move file to file
        elif s.kind in ("copy", "fuse", "split"):
            need = 3 * _CHUNK_BYTES  # streamed in pieces (cast chunk, interleave buffer)
        elif s.kind in ("stack", "unstack"):  # one expert block at a time: packed, op'd, cast
            need = 3 * _nbytes(out_dtype, s.stacking.block) + _CHUNK_BYTES
        elif s.kind == "regroup":  # every part split out, then packed again
            need = 2 * step_bytes + _CHUNK_BYTES
        else:  # whole-tensor op (transpose, rotary permute): output plus a float32 cast of it at worst
            need = 3 * step_bytes
        # a decoded (dequantised) source is materialised whole; stack steps decode one expert at a time
        decoded = [available[n].nbytes for n in s.sources if n in reader.decoders]
        if decoded:
            need += max(decoded) if s.kind == "stack" else sum(decoded)
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
    elif step.kind == "op":
        arr = reader.array(step.sources[0])
        src_dtype = reader.tensors[step.sources[0]].dtype
        if step.inverse:
            arr = step.op.inverse(arr, dims, tuple(step.target_shapes[0]))
        else:
            arr = step.op.forward(arr, dims)
        yield 0, _cast_rows(arr, src_dtype, out_dtype, step.targets[0])
    elif step.kind in ("fuse", "split", "regroup"):
        yield from _produce_grouped(step, reader, dims)
    elif step.kind == "stack":
        yield 0, _stack_pieces(step, reader, dims)
    elif step.kind == "unstack":
        yield from _unstack(step, reader, dims)
    else:
        raise ConversionError(f"internal: step kind {step.kind!r} has no executor")


def _read_all(step: Step, reader: Reader, names: list[str]) -> tuple[list[np.ndarray], str]:
    """Source arrays; sources of mixed dtypes (only with --dtype) are cast to the output dtype one by one."""
    arrays = [reader.array(n) for n in names]
    kinds = {reader.tensors[n].dtype for n in names}
    if len(kinds) == 1:
        return arrays, kinds.pop()
    out = step.out_dtype
    return [dtypes.cast(a, reader.tensors[n].dtype, out, n) for a, n in zip(arrays, names, strict=True)], out


def _cast_pieces(pieces, src: str, dst: str, name: str):
    if src == dst:
        return pieces
    return (dtypes.cast(p, src, dst, name) for p in pieces)


def _produce_grouped(step: Step, reader: Reader, dims: dict[str, int]):
    g = step.grouping
    arrays, src_dtype = _read_all(step, reader, step.sources)
    out = step.out_dtype
    if step.kind == "fuse":
        held = g.dst[0]
        pieces = [arrays[0]] if len(held) == 1 else g.dst_layout.fuse_chunks(arrays, dims, _CHUNK_BYTES)
        # cast piece by piece; name the fused target (the overflow message also says the dtypes)
        yield 0, _cast_pieces(pieces, src_dtype, out, step.targets[0])
        return
    if step.kind == "split":
        held = g.src[0]
        if len(held) == 1:
            per_target = [[arrays[0]]]
        else:
            per_target = g.src_layout.split_chunks(arrays[0], list(step.target_shapes), dims, _CHUNK_BYTES)
        for i, pieces in enumerate(per_target):
            yield i, _cast_pieces(pieces, src_dtype, out, step.targets[i])
        return
    # regroup: split every source into its parts, then pack each target's parts
    parts: list[np.ndarray | None] = [None] * len(g.part_shapes)
    for arr, held in zip(arrays, g.src, strict=True):
        if len(held) == 1:
            parts[held[0]] = arr
            continue
        for i, p in zip(held, g.src_layout.split(arr, [g.part_shapes[i] for i in held], dims), strict=True):
            parts[i] = p
    for j, held in enumerate(g.dst):
        if len(held) == 1:
            pieces = [parts[held[0]]]
        else:
            pieces = g.dst_layout.fuse_chunks([parts[i] for i in held], dims, _CHUNK_BYTES)
        yield j, _cast_pieces(pieces, src_dtype, out, step.targets[j])


def _stack_pieces(step: Step, reader: Reader, dims: dict[str, int]):
    """The stacked tensor as one piece per expert: memory holds one expert block, however many experts."""
    st, out = step.stacking, step.out_dtype
    k = st.parts
    for e in range(st.experts):
        names = step.sources[e * k : (e + 1) * k]
        arrays = [dtypes.cast(reader.array(n), reader.tensors[n].dtype, out, n) for n in names]
        block = arrays[0] if k == 1 else st.layout.fuse(arrays, dims)
        if st.op is not None:
            block = st.op.forward(block, dims)
        yield block


def _unstack(step: Step, reader: Reader, dims: dict[str, int]):
    st, out = step.stacking, step.out_dtype
    src = step.sources[0]
    src_dtype = reader.tensors[src].dtype
    blocks = reader.array(src).reshape(st.experts, *st.block)
    k = st.parts
    for e in range(st.experts):
        block = blocks[e]
        if st.op is not None:
            block = st.op.inverse(block, dims, st.block_in)
        parts = [block] if k == 1 else st.layout.split(block, st.part_shapes, dims)
        for i, p in enumerate(parts):
            name = step.targets[e * k + i]
            yield e * k + i, dtypes.cast(p, src_dtype, out, name)


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


def _refuse_fp8_output(dtype: str | None, direction: str) -> None:
    if dtype == "float8_e4m3fn":
        raise ConversionError(
            f"{direction} cannot write float8_e4m3fn: FP8 block quantisation is one-way here (FP8 checkpoints are "
            f"dequantised on the way in); choose --dtype bfloat16 or float32"
        )


def _hf_input_config(spec: Spec, inp: Path, reader: Reader, hf_config) -> tuple[dict, object]:
    if hf_config is not None:
        if isinstance(hf_config, dict):
            return hf_config, "hf_config"
        return read_hf_config(Path(hf_config)), hf_config
    base = inp if inp.is_dir() else inp.parent
    fmt = spec.formats.get(reader.format)
    if fmt is not None:  # another source format: its own config file, translated by the spec
        src = base / fmt.config_file
        shapes = {n: t.shape for n, t in reader.tensors.items()}
        try:
            return fmt.config(read_hf_config(src), shapes), src
        except (KeyError, TypeError, ValueError) as e:
            raise ConversionError(f"{str(src)!r} lacks what a {spec.name!r} model needs: {e!r}") from None
    return read_hf_config(base / "config.json"), base / "config.json"


def _without_fp8_quantization(cfg: dict) -> dict:
    """``config.json`` for dequantised weights: an fp8 ``quantization_config`` would make HF quantise again."""
    q = cfg.get("quantization_config")
    if isinstance(q, dict) and str(q.get("quant_method", "")).lower() == "fp8":
        return {k: v for k, v in cfg.items() if k != "quantization_config"}
    return cfg


def hf_to_ms(
    spec: Spec,
    input_path,
    output_path,
    dtype=None,
    *,
    format: str = "ckpt",
    qkv_concat: bool | None = None,
    dry_run: bool = False,
    hf_config=None,
    progress: bool = True,
    max_shard_bytes: int = 5 * 2**30,
    print_fn=print,
    **options,
) -> Result | Plan:
    """Convert an HF checkpoint (safetensors / .bin, or another source format the spec declares, e.g. Meta's
    ``consolidated.*.pth``) to MindSpore names (``.ckpt`` or safetensors).

    ``options`` (``qkv_concat`` ...) must be declared by the spec (``Spec.options``); switching on one it does
    not declare is an error. FP8 weights with block scales are dequantised when the spec declares ``dequant``.
    """
    inp, out = Path(input_path), Path(output_path)
    if format not in ("ckpt", "safetensors"):
        raise ConversionError(f"unknown output format {format!r}; expected 'ckpt' or 'safetensors'")
    out_dtype = _resolve_dtype(dtype)
    _refuse_fp8_output(out_dtype, "hf_to_ms")
    reader = open_source(inp, formats=spec.formats)
    try:
        fmt = spec.formats.get(reader.format)
        declared = fmt.options if fmt is not None else spec.options
        where = f" for {reader.format!r} checkpoints" if fmt is not None else ""
        opts = resolve_options(spec.name, declared, {"qkv_concat": qkv_concat, **options}, where=where)
        cfg, cfg_path = _hf_input_config(spec, inp, reader, hf_config)
        pairs = dequantize(reader, spec.dequant, out_dtype)
        fp8 = [n for n, t in reader.tensors.items() if t.dtype == "float8_e4m3fn"]
        if fp8:
            raise ConversionError(
                f"tensor {fp8[0]!r} is float8_e4m3fn and the {spec.name!r} spec declares no FP8 dequantisation "
                f"(Spec(dequant=...)); MindSpore checkpoints cannot hold fp8"
            )
        if pairs:
            cfg = _without_fp8_quantization(cfg)
        plan = build_plan(
            spec, reader, cfg, cfg_path, "hf_to_ms", options=opts, dtype=out_dtype,
            rules=fmt.rules if fmt is not None else None,
        )  # fmt: skip
        plan.dequantised = pairs
        if dry_run:
            print_fn(plan.describe(out, format, max_shard_bytes))
            return plan
        if pairs:
            print_fn(
                f"note: dequantised {len(pairs)} float8_e4m3fn weights with their block scales to "
                f"{sorted({reader.tensors[w].dtype for w, _ in pairs})[0]}"
            )
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
    the input, else ``ms_config`` (a MindFormers model_config dict / YAML path, via the spec). Options
    (``qkv_concat`` ...) default to what the spec detects in the checkpoint's names. Training state (optimizer
    moments, counters) is skipped. LoRA tensors (MindPet ``*_lora_a/b``) are exported as a PEFT adapter to
    ``lora_output`` (default ``<output_path>_lora``) with ``lora_alpha``.
    """
    inp, out = Path(input_path), Path(output_path)
    out_dtype = _resolve_dtype(dtype)
    _refuse_fp8_output(out_dtype, "ms_to_hf")
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
        from mf_ext.convert.lora import is_lora

        # a MindSpore training checkpoint also holds optimizer moments and loop counters: not model weights
        state = train_state(reader.tensors) + getattr(reader, "skipped", [])
        for n in state:
            reader.tensors.pop(n, None)
        if state and not dry_run:
            print_fn(f"note: skipped {len(state)} optimizer/training-state tensors ({_fmt_names(state, 3)})")
        lora = sorted(n for n in reader.tensors if is_lora(n))
        for n in lora:  # the base model goes to the HF folder, the LoRA pairs to a PEFT adapter folder
            del reader.tensors[n]
        opts = resolve_options(spec.name, spec.options, {"qkv_concat": qkv_concat, **options}, list(reader.tensors))
        plan = build_plan(spec, reader, cfg, cfg_path, "ms_to_hf", options=opts, dtype=out_dtype)
        if dry_run:
            print_fn(plan.describe(out, "hf safetensors", max_shard_bytes))
            return plan
        _prepare_output(out)
        out_cfg = dict(cfg)
        if spec.dequant and _without_fp8_quantization(cfg) is not cfg:
            out_cfg = _without_fp8_quantization(cfg)
            print_fn(
                "note: FP8 block dequantisation is one-way: the HF folder holds the dequantised weights, without "
                "*_scale_inv tensors or quantization_config"
            )
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
