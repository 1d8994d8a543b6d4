"""Load an HF safetensors checkpoint straight into a model when the family's mapping only renames tensors.

:func:`plan_in_place` checks from the headers alone (the engine's :func:`~mf_ext.convert.engine.build_plan`, the
same checks a conversion runs) whether every step of the family's ``hf`` spec is a plain rename of a safetensors
tensor; :class:`InPlaceWeights` then reads each tensor from the memory-mapped file, casts it to its parameter's
dtype and sets it. Nothing is written to disk. A fused, split, permuted or dequantised mapping, a ``.bin`` or
``.pth`` source, or a requested output dtype returns ``None``: such checkpoints go through the conversion cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mf_ext.convert import dtypes
from mf_ext.convert.errors import ConversionError

__all__ = ["InPlaceWeights", "plan_in_place"]


@dataclass
class InPlaceWeights:
    """The HF folder ``source`` whose safetensors tensors load under the model names ``names`` (model -> HF)."""

    source: Path
    names: dict[str, str]

    def __fspath__(self) -> str:
        return str(self.source)

    def __str__(self) -> str:
        return str(self.source)

    def load_into(self, model) -> None:
        """Set every parameter of ``model`` from its HF tensor; one-line errors for names or shapes that differ."""
        import mindspore as ms

        from mf_ext.convert.readers import open_source

        params = {}
        for p in model.get_parameters():
            params.setdefault(p.name, p)
        missing = sorted(set(params) - set(self.names))
        extra = sorted(set(self.names) - set(params))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} model parameter(s) it does not hold: {', '.join(missing[:4])}")
            if extra:
                parts.append(f"{len(extra)} tensor(s) the model does not have: {', '.join(extra[:4])}")
            raise ConversionError(f"--convert {str(self.source)!r} does not fit the model: {'; '.join(parts)}")
        reader = open_source(self.source)
        try:
            for name, param in params.items():
                info = reader.tensors[self.names[name]]
                if tuple(info.shape) != tuple(param.shape):
                    raise ConversionError(
                        f"--convert {str(self.source)!r}: tensor {info.name!r} has shape {list(info.shape)}, "
                        f"parameter {name!r} expects {list(param.shape)}"
                    )
                arr = reader.array(info.name)
                if info.dtype == "bfloat16":  # exact widening; a bf16 parameter gets the same values back
                    arr = dtypes._bf16_to_f32(arr)
                else:
                    arr = np.array(arr, copy=True)  # out of the map, which closes below
                tensor = ms.Tensor.from_numpy(arr)  # no second copy
                if tensor.dtype != param.dtype:
                    tensor = ms.ops.cast(tensor, param.dtype)
                param.set_data(tensor)
        finally:
            reader.close()


def plan_in_place(spec, hf_dir: str | Path, *, dtype=None, qkv_concat: bool = False) -> InPlaceWeights | None:
    """An :class:`InPlaceWeights` for ``hf_dir`` if ``spec`` maps its safetensors by renames alone, else ``None``.

    Errors of the checkpoint itself (missing or unexpected tensors, shapes the config.json contradicts) are raised
    as the conversion would raise them.
    """
    from mf_ext.convert.engine import _hf_input_config, build_plan, resolve_options
    from mf_ext.convert.readers import open_source

    if dtype is not None:
        return None
    src = Path(hf_dir)
    reader = open_source(src, formats=spec.formats)
    try:
        if reader.format != "safetensors" or spec.formats.get(reader.format) is not None or spec.dequant:
            return None
        if any(t.dtype not in ("float32", "float16", "bfloat16") for t in reader.tensors.values()):
            return None
        opts = resolve_options(spec.name, spec.options, {"qkv_concat": qkv_concat})
        cfg, cfg_path = _hf_input_config(spec, src, reader, None)
        plan = build_plan(spec, reader, cfg, cfg_path, "hf_to_ms", options=opts, dtype=None)
        if plan.same_checks or any(s.kind != "copy" or s.op is not None for s in plan.steps):
            return None
        return InPlaceWeights(
            src, {t: s for step in plan.steps for s, t in zip(step.sources, step.targets, strict=True)}
        )
    finally:
        reader.close()
