"""The vocabulary a model family uses to declare its weight mapping as data.

A family's ``weight_map.py`` builds one :class:`Spec` from these rules. Names are HF-side and MindSpore-side
patterns where ``{L}`` stands for the layer index. Every operation has an exact inverse, so hf->ms and ms->hf are
both derived from the same rules; nothing in this module knows any family.

Rules:
  * :class:`Rename` -- one tensor to one tensor, optionally with an invertible ``op`` (:class:`Transpose`,
    :class:`RotaryPermute`).
  * :class:`Fuse` -- several HF tensors into one MindSpore tensor with a ``layout`` (:class:`QkvGroups`,
    :class:`RowInterleave`, :class:`Concat`); ms->hf splits it back.
  * :class:`Drop` -- an HF tensor that is deliberately not carried over, with the reason.

``when`` / ``unless`` name a flag (options such as ``qkv_concat`` or config-derived flags such as
``tie_word_embeddings``) that switches a rule on or off. Shapes are tuples of expressions over the family's named
dimensions (``"heads*head_dim"``), checked against the model config before any data moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mf_ext.convert.errors import ConversionError

LAYER = "{L}"

Shape = tuple[str, ...]


def eval_dim(expr: str | int, dims: dict[str, int]) -> int:
    """Evaluate ``"a*b*2"`` (products of named dims and integers) against ``dims``."""
    if isinstance(expr, int):
        return expr
    out = 1
    for term in str(expr).split("*"):
        term = term.strip()
        if term.isdigit():
            out *= int(term)
        elif term in dims:
            out *= int(dims[term])
        else:
            raise ConversionError(f"shape expression {expr!r} names unknown dimension {term!r}")
    return out


def eval_shape(shape: Sequence[str | int], dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(eval_dim(e, dims) for e in shape)


# ----------------------------------------------------------------------------------------------- one-tensor ops
class Op:
    """An invertible transform of one tensor; ``forward`` is hf->ms."""

    def forward(self, arr: np.ndarray, dims: dict[str, int]) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, arr: np.ndarray, dims: dict[str, int]) -> np.ndarray:
        raise NotImplementedError

    def shape(self, shape: tuple[int, ...], dims: dict[str, int]) -> tuple[int, ...]:
        return shape


@dataclass(frozen=True)
class Transpose(Op):
    """2-D transpose (e.g. a Conv1D-style HF weight stored as (in, out))."""

    def forward(self, arr, dims):
        return np.ascontiguousarray(arr.T)

    def inverse(self, arr, dims):
        return np.ascontiguousarray(arr.T)

    def shape(self, shape, dims):
        return tuple(reversed(shape))


@dataclass(frozen=True)
class RotaryPermute(Op):
    """Meta's interleaved rotary layout -> HF's half-split layout, per head (``heads`` names the head count)."""

    heads: str = "heads"

    def _view(self, arr, dims, inverse):
        h = eval_dim(self.heads, dims)
        rows, rest = arr.shape[0], arr.shape[1:]
        hd = rows // h
        if inverse:
            return np.ascontiguousarray(arr.reshape(h, 2, hd // 2, *rest).swapaxes(1, 2)).reshape(arr.shape)
        return np.ascontiguousarray(arr.reshape(h, hd // 2, 2, *rest).swapaxes(1, 2)).reshape(arr.shape)

    def forward(self, arr, dims):
        return self._view(arr, dims, inverse=False)

    def inverse(self, arr, dims):
        return self._view(arr, dims, inverse=True)


# ----------------------------------------------------------------------------------------------- fuse layouts
class Layout:
    """How several tensors are packed into one along axis 0; ``split`` is the exact inverse of ``fuse``."""

    def fuse(self, parts: list[np.ndarray], dims: dict[str, int]) -> np.ndarray:
        raise NotImplementedError

    def split(self, arr: np.ndarray, part_shapes: list[tuple[int, ...]], dims: dict[str, int]) -> list[np.ndarray]:
        raise NotImplementedError

    def fuse_chunks(self, parts: list[np.ndarray], dims: dict[str, int], chunk_bytes: int):
        """The fused tensor as consecutive pieces (row-major order); override to stream without a full copy."""
        yield self.fuse(parts, dims)

    def split_chunks(
        self, arr: np.ndarray, part_shapes: list[tuple[int, ...]], dims: dict[str, int], chunk_bytes: int
    ) -> list:
        """For each part, an iterable of its consecutive pieces."""
        return [[p] for p in self.split(arr, part_shapes, dims)]

    def shape(self, part_shapes: list[tuple[int, ...]], dims: dict[str, int]) -> tuple[int, ...]:
        rest = part_shapes[0][1:]
        for s in part_shapes[1:]:
            if s[1:] != rest:
                raise ConversionError(f"cannot fuse tensors of shapes {part_shapes}: trailing dims differ")
        return (sum(s[0] for s in part_shapes), *rest)


@dataclass(frozen=True)
class Concat(Layout):
    """Plain concatenation along axis 0."""

    def fuse(self, parts, dims):
        return np.concatenate(parts, axis=0)

    def split(self, arr, part_shapes, dims):
        out, start = [], 0
        for s in part_shapes:
            out.append(np.ascontiguousarray(arr[start : start + s[0]]))
            start += s[0]
        return out


@dataclass(frozen=True)
class QkvGroups(Layout):
    """q, k, v packed per KV group: ``[q heads of group 0, k0, v0, q heads of group 1, k1, v1, ...]``.

    This is the layout a model that reshapes the fused projection to ``(groups, (rep + 2) * head_dim)`` and splits
    the last axis into ``(rep*head_dim, head_dim, head_dim)`` needs (MindFormers' ``w_qkv``). Weights and biases.
    """

    groups: str = "kv_heads"

    def fuse(self, parts, dims):
        g = eval_dim(self.groups, dims)
        rest = parts[0].shape[1:]
        grouped = [p.reshape(g, p.shape[0] // g, *rest) for p in parts]
        return np.concatenate(grouped, axis=1).reshape(-1, *rest)

    def split(self, arr, part_shapes, dims):
        g = eval_dim(self.groups, dims)
        rest = arr.shape[1:]
        per = [s[0] // g for s in part_shapes]
        grouped = arr.reshape(g, sum(per), *rest)
        out, start = [], 0
        for s, n in zip(part_shapes, per, strict=True):
            out.append(np.ascontiguousarray(grouped[:, start : start + n]).reshape(s))
            start += n
        return out

    # every group's slice of every part is contiguous in both layouts: stream views, copy nothing
    def fuse_chunks(self, parts, dims, chunk_bytes):
        g = eval_dim(self.groups, dims)
        grouped = [p.reshape(g, p.shape[0] // g, *p.shape[1:]) for p in parts]
        for i in range(g):
            for p in grouped:
                yield p[i]

    def split_chunks(self, arr, part_shapes, dims, chunk_bytes):
        g = eval_dim(self.groups, dims)
        per = [s[0] // g for s in part_shapes]
        grouped = arr.reshape(g, sum(per), *arr.shape[1:])
        starts = np.cumsum([0, *per])

        def one(a: int, n: int):  # a function, not a nested genexp: binds a and n now
            return (grouped[i, a : a + n] for i in range(g))

        return [one(int(a), n) for a, n in zip(starts[:-1], per, strict=True)]


@dataclass(frozen=True)
class RowInterleave(Layout):
    """Rows alternate between the parts: ``[a0, b0, a1, b1, ...]`` (MindFormers' ``w_gate_hidden``)."""

    def fuse(self, parts, dims):
        rest = parts[0].shape[1:]
        return np.stack(parts, axis=1).reshape(-1, *rest)

    def split(self, arr, part_shapes, dims):
        n = len(part_shapes)
        rest = arr.shape[1:]
        grouped = arr.reshape(-1, n, *rest)
        return [np.ascontiguousarray(grouped[:, i]) for i in range(n)]

    # interleaving needs a copy: build it in a reused buffer of about chunk_bytes
    def fuse_chunks(self, parts, dims, chunk_bytes):
        rows, rest, n = parts[0].shape[0], parts[0].shape[1:], len(parts)
        row_bytes = max(1, parts[0][:1].nbytes * n)
        step = max(1, chunk_bytes // row_bytes)
        buf = np.empty((min(step, rows), n, *rest), dtype=parts[0].dtype)
        for a in range(0, rows, step):
            b = min(rows, a + step)
            for i, p in enumerate(parts):
                buf[: b - a, i] = p[a:b]
            yield buf[: b - a]

    def split_chunks(self, arr, part_shapes, dims, chunk_bytes):
        n = len(part_shapes)
        grouped = arr.reshape(-1, n, *arr.shape[1:])

        def one(i):
            rows = grouped.shape[0]
            step = max(1, chunk_bytes // max(1, grouped[:1, i].nbytes))
            buf = np.empty((min(step, rows), *grouped.shape[2:]), dtype=arr.dtype)
            for a in range(0, rows, step):
                b = min(rows, a + step)
                buf[: b - a] = grouped[a:b, i]
                yield buf[: b - a]

        return [one(i) for i in range(n)]


# ----------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rename:
    hf: str
    ms: str
    shape: Shape
    op: Op | None = None
    when: str | None = None
    unless: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Fuse:
    hf: tuple[str, ...]
    ms: str
    shapes: tuple[Shape, ...]
    layout: Layout
    when: str | None = None
    unless: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Drop:
    """A tensor not carried over, with the reason. ``side`` says which checkpoint may hold it (``"hf"``: dropped
    by hf->ms; ``"ms"``: dropped by ms->hf). ``same_as`` names a tensor (same side) it must equal, checked on
    the data -- e.g. a tied ``lm_head.weight`` must be the embedding -- so dropping it loses nothing."""

    name: str
    reason: str
    when: str | None = None
    unless: str | None = None
    optional: bool = True
    same_as: str | None = None
    side: str = "hf"

    @property
    def hf(self) -> str:  # the name pattern, whichever side (used for layer expansion)
        return self.name


Rule = Rename | Fuse | Drop


@dataclass(frozen=True)
class Spec:
    """A family's weight mapping.

    ``dims(hf_config) -> {name: int}`` must provide ``layers`` and every name the shapes use;
    ``flags(hf_config) -> {name: bool}`` supplies config-derived flags (user options are merged over them).
    ``generation_config(hf_config)`` builds ``generation_config.json`` for HF output.
    """

    name: str
    rules: tuple[Rule, ...]
    dims: Callable[[dict], dict[str, int]]
    flags: Callable[[dict], dict[str, bool]] = field(default=lambda cfg: {})
    generation_config: Callable[[dict], dict] | None = None
    hf_config_from_ms: Callable[[dict], dict] | None = None
    meta_rules: tuple[Rule, ...] = ()
    meta_dims: Callable[[dict], dict[str, int]] | None = None
    meta_concat_dim: Callable[[str], int | None] | None = None
    hf_config_from_meta: Callable[[dict], dict] | None = None
