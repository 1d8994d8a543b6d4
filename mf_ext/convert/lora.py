"""MindFormers LoRA weights -> a PEFT adapter folder (``adapter_model.safetensors`` + ``adapter_config.json``).

MindFormers/MindPet store ``<cell>.mindpet_delta_lora_a`` (rank, in) and ``..._lora_b`` (out, rank) (older
releases: ``tk_delta_lora_a/b``; parallel-core layers: ``lora_a/b``) -- the same orientation as PEFT's
``lora_A.weight`` / ``lora_B.weight``. The cell is found in the family's spec: a renamed MindSpore weight maps to
its HF module; LoRA on a fused cell (``w_qkv``, ``w_gate_hidden``) is split exactly -- ``lora_B`` rows are split
with the fuse layout and ``lora_A`` is shared (``B_q A`` is the q rows of ``B_qkv A``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from mf_ext.convert import dtypes
from mf_ext.convert.engine import Plan, Result, _dims, _prepare_output, find_source_config, read_hf_config
from mf_ext.convert.errors import ConversionError
from mf_ext.convert.memory import AnonPeak
from mf_ext.convert.readers import open_source
from mf_ext.convert.spec import LAYER, Fuse, Regroup, Rename, Spec, Split, Stack, eval_shape
from mf_ext.convert.writers import SafetensorsDirWriter, Target

LORA_SUFFIX = re.compile(r"^(?P<cell>.+)\.(?:mindpet_delta_|tk_delta_)?lora_(?P<ab>[abAB])(?:\.weight)?$")


def is_lora(name: str) -> bool:
    return LORA_SUFFIX.match(name) is not None


def _pattern(ms_weight: str) -> re.Pattern:
    cell = ms_weight.removesuffix(".weight")
    return re.compile("^" + re.escape(cell).replace(re.escape(LAYER), r"(?P<L>\d+)") + "$")


def _hf_module(hf_weight: str, layer: str | None) -> str:
    name = hf_weight.removesuffix(".weight")
    return name.replace(LAYER, layer) if layer is not None else name


def lora_to_peft(
    spec: Spec,
    input_path,
    output_path,
    dtype=None,
    *,
    lora_alpha: float = 16,
    hf_config=None,
    base_model_name_or_path: str = "",
    progress: bool = False,
) -> Result:
    """Export the LoRA tensors of a MindSpore checkpoint at ``input_path`` as a PEFT adapter at ``output_path``.

    ``lora_alpha`` is not stored in checkpoints: pass the value used for training (MindFormers' default 16).
    Non-LoRA tensors are ignored (convert the base model with ``ms_to_hf``).
    """
    inp, out = Path(input_path), Path(output_path)
    reader = open_source(inp)
    try:
        cfg_path = hf_config or find_source_config(inp)
        cfg = hf_config if isinstance(hf_config, dict) else (read_hf_config(Path(cfg_path)) if cfg_path else None)
        dims = _dims(spec, cfg, cfg_path) if cfg else {}
        pairs: dict[str, dict[str, str]] = {}
        for name in reader.tensors:
            m = LORA_SUFFIX.match(name)
            if m:
                pairs.setdefault(m.group("cell"), {})[m.group("ab").lower()] = name
        if not pairs:
            raise ConversionError(f"no LoRA tensors (*lora_a / *lora_b) in {str(inp)!r}")
        rules = [r for r in spec.rules if isinstance(r, Rename | Fuse | Split | Regroup | Stack)]
        tensors: list[tuple[str, object]] = []  # (peft name, array)
        modules: set[str] = set()
        rank = None
        for cell, ab in sorted(pairs.items()):
            if set(ab) != {"a", "b"}:
                raise ConversionError(f"LoRA cell {cell!r} has only lora_{''.join(ab)} in {str(inp)!r}")
            a = reader.array(ab["a"])
            b = reader.array(ab["b"])
            src_dtype = reader.tensors[ab["a"]].dtype
            out_dtype = dtypes.canonical(dtype) if dtype else src_dtype
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
                raise ConversionError(
                    f"LoRA cell {cell!r}: lora_a {list(a.shape)} and lora_b {list(b.shape)} do "
                    f"not form (rank, in) x (out, rank)"
                )
            if rank is not None and a.shape[0] != rank:
                raise ConversionError(f"LoRA cell {cell!r} has rank {a.shape[0]}, others have {rank}")
            rank = a.shape[0]
            match = None
            for r in rules:
                for ms_name in [r.ms] if isinstance(r.ms, str) else list(r.ms):
                    mm = _pattern(ms_name).match(cell)
                    if mm:
                        match = (r, mm.groupdict().get("L"))
                        break
                if match is not None:
                    break
            if match is None:
                raise ConversionError(f"LoRA cell {cell!r} matches no weight of the {spec.name!r} mapping")
            rule, layer = match
            if not isinstance(rule, Rename | Fuse):
                # B_q A, B_k A, B_v A of separate cells are no single low-rank pair on a fused HF module
                raise ConversionError(
                    f"LoRA cell {cell!r} comes from a {type(rule).__name__} rule of the {spec.name!r} mapping; "
                    f"only LoRA on renamed or fused cells can be exported as a PEFT adapter"
                )

            def cast(x, n, out_dtype=out_dtype, src_dtype=src_dtype):
                return dtypes.cast(x, src_dtype, out_dtype, n)

            if isinstance(rule, Rename):
                mod = _hf_module(rule.hf, layer)
                tensors += [
                    (f"base_model.model.{mod}.lora_A.weight", cast(a, ab["a"])),
                    (f"base_model.model.{mod}.lora_B.weight", cast(b, ab["b"])),
                ]
                modules.add(mod)
            else:
                if not dims:
                    raise ConversionError(
                        f"splitting LoRA of fused cell {cell!r} needs the model config; pass hf_config"
                    )
                part_rows = [eval_shape(s, dims)[0] for s in rule.shapes]
                b_parts = rule.layout.split(b, [(n, rank) for n in part_rows], dims)
                for hf_w, bp in zip(rule.hf, b_parts, strict=True):
                    mod = _hf_module(hf_w, layer)
                    tensors += [
                        (f"base_model.model.{mod}.lora_A.weight", cast(a, ab["a"])),
                        (f"base_model.model.{mod}.lora_B.weight", cast(bp, ab["b"])),
                    ]
                    modules.add(mod)
        _prepare_output(out)
        adapter_config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": int(rank),
            "lora_alpha": lora_alpha,
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": False,
            "inference_mode": True,
            # full module paths (PEFT matches by suffix): only the modules that were trained get an adapter
            "target_modules": sorted(modules),
            "base_model_name_or_path": base_model_name_or_path or None,
        }
        targets = [Target(n, str(_dtype_of(arr, dtype, reader, pairs)), tuple(arr.shape)) for n, arr in tensors]
        writer = SafetensorsDirWriter(
            out,
            metadata={"format": "pt"},
            single_name="adapter_model.safetensors",
            max_shard_bytes=2**62,
            extra_files={"adapter_config.json": adapter_config},
        )
        with AnonPeak() as mem:
            t0 = time.perf_counter()
            writer.begin(targets)
            try:
                for t, (_, arr) in zip(targets, tensors, strict=True):
                    writer.write(t, arr)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
            secs = time.perf_counter() - t0
        plan = Plan("lora_to_peft", [], targets, {}, dims, {}, list(reader.files), writer.bytes_written, 0, cfg or {})
        return Result(out, plan, secs, writer.bytes_written, mem.peak)
    finally:
        reader.close()


def _dtype_of(arr, dtype, reader, pairs) -> str:
    if dtype:
        return dtypes.canonical(dtype)
    first = next(iter(pairs.values()))["a"]
    return reader.tensors[first].dtype
