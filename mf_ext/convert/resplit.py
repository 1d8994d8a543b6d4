"""``resplit``: rewrite a checkpoint in another container/sharding/dtype with its tensor names unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from mf_ext.convert import dtypes
from mf_ext.convert.engine import (
    Plan,
    Result,
    Step,
    _prepare_output,
    _resolve_dtype,
    _timed_execute,
    find_source_config,
)
from mf_ext.convert.errors import ConversionError
from mf_ext.convert.readers import open_source
from mf_ext.convert.writers import CkptWriter, SafetensorsDirWriter, Target


def resplit(
    input_path,
    output_path,
    dtype=None,
    *,
    format: str = "safetensors",
    dry_run: bool = False,
    progress: bool = True,
    max_shard_bytes: int = 5 * 2**30,
    print_fn=print,
) -> Result | Plan:
    """Copy every tensor of ``input_path`` to ``output_path`` (``.ckpt`` or safetensors folder), names kept."""
    inp, out = Path(input_path), Path(output_path)
    if format not in ("ckpt", "safetensors"):
        raise ConversionError(f"unknown output format {format!r}; expected 'ckpt' or 'safetensors'")
    reader = open_source(inp)
    try:
        dt = _resolve_dtype(dtype)
        steps, targets = [], []
        for name in sorted(reader.tensors, key=lambda n: reader.tensors[n].sort_key):
            info = reader.tensors[name]
            # --dtype applies to floating tensors; integer ones (step counters ...) keep theirs
            out_dtype = dt if dt is not None and info.dtype in dtypes.FLOAT_DTYPES else info.dtype
            steps.append(
                Step(
                    "copy",
                    [name],
                    [name],
                    [info.shape],
                    [info.shape],
                    out_dtype=out_dtype,
                    same_dtype=out_dtype == info.dtype,
                )
            )
            targets.append(Target(name, out_dtype, info.shape))
        cfg_src = find_source_config(inp) if inp.suffix == ".ckpt" else (inp / "config.json" if inp.is_dir() else None)
        cfg = json.loads(cfg_src.read_text()) if cfg_src and cfg_src.is_file() else None
        plan = Plan(
            "resplit",
            steps,
            targets,
            {},
            {},
            {},
            list(reader.files),
            sum(t.nbytes for t in targets),
            64 * 2**20,
            cfg or {},
        )
        if dry_run:
            print_fn(plan.describe(out, format))
            return plan
        _prepare_output(out)
        if format == "ckpt":
            writer = CkptWriter(out, sidecars={Path(str(out) + ".config.json"): cfg} if cfg else None)
        else:
            extra = {"config.json": cfg} if cfg else {}
            writer = SafetensorsDirWriter(
                out, max_shard_bytes=max_shard_bytes, metadata={"format": "ms"}, always_index=True, extra_files=extra
            )
        return _timed_execute(plan, reader, writer, progress, "resplit", out)
    finally:
        reader.close()
