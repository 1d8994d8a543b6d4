"""The vocabulary a model family uses to declare its weight mapping as data.

A family's ``weight_map.py`` builds one :class:`Spec` from these rules. Names are HF-side and MindSpore-side
patterns: ``{L}`` stands for the layer index, ``{E}`` for the expert index. Every rule is a relation between HF
tensors and MindSpore tensors; hf->ms and ms->hf are both derived from it (exact inverses), except the one-way
dtype ops, which say so. Nothing in this module knows any family.

Rules (N HF tensors <-> M MindSpore tensors):
  * :class:`Rename` -- 1 <-> 1, optionally through an invertible ``op``.
  * :class:`Fuse` -- N HF tensors <-> 1 MindSpore tensor packed with a ``layout``.
  * :class:`Split` -- 1 HF tensor <-> N MindSpore tensors: the mirror of :class:`Fuse` (e.g. InternLM2's fused
    ``attention.wqkv``, grouped per KV head as ``[q heads of the group, k, v]`` = ``QkvGroups``, <-> ``wq/wk/wv``).
  * :class:`Regroup` -- the general N <-> M form: named *parts* (``q``, ``k``, ``v`` ...), which HF tensor holds
    which parts with which layout, which MindSpore tensor holds which parts with which layout. Fuse and Split are
    its special cases.
  * :class:`Stack` -- the per-expert HF tensors of a layer (``...experts.{E}.gate_proj.weight``) <-> one
    MindSpore tensor ``(E, ...)``; streamed one expert at a time (memory flat in the number of experts). Several
    HF tensors per expert can be packed first (``layout``), each expert block transformed (``op``) and the stack
    declared with a flat shape (``ms_shape``) -- e.g. the mcore ``weight1`` = per expert ``[gate^T | up^T]``
    (:func:`mcore_experts`).
  * :class:`Drop` -- a tensor that is deliberately not carried over, with the reason.

One-tensor ops (``op=``; ``forward`` is hf->ms, ``inverse`` its exact inverse): :class:`Transpose`,
:class:`RotaryPermute` (interleaved rotary pairs <-> half-split, per head, optionally only ``rot_dim`` dims from
``offset``: partial rotary), :class:`Reshape`, and :class:`Chain` of several.

Layouts (how parts are packed along axis 0): :class:`Concat`, :class:`QkvGroups` (per group ``[a_g, b_g, c_g]``),
:class:`RowInterleave` (``[a0, b0, a1, b1, ...]``).

Rule selection, on every rule: ``when`` / ``unless`` name flags -- options such as ``qkv_concat`` and
config-derived flags such as ``tie_word_embeddings`` -- as a conjunction (``"a+b"``: both set; ``"a+!b"``: a set,
b not; ``unless`` skips the rule when its conjunction holds); ``layers(i, config) -> bool`` keeps a
``{L}`` rule to some layers (dense first-k, every n-th layer sparse, MTP layers past ``num_hidden_layers``; see
:func:`layers_from` and friends); ``optional`` lets a rule find no tensor at all.

Options (:class:`Option`) are declared by the spec -- the engine never guesses one. hf->ms refuses an option a
spec does not declare; ms->hf asks ``Option.detect(names)`` when the user did not say.

Source formats: the spec's own rules read HF checkpoints; ``formats={"meta": Format(...)}`` adds others (their
files, rules, config translation and model-parallel shard axis), read by hf->ms only.

One-way dtype ops (``dequant=``): :class:`Fp8BlockDequant` turns float8_e4m3fn weights with their
``*_scale_inv`` block scales into bf16/fp32 before the rules see them; ms->hf cannot requantise and says so.

Shapes are tuples of expressions over the family's named dimensions (``"heads*head_dim"``,
``"heads*head_dim+2*kv_heads*head_dim"``), checked against the model config before any data moves. A rule of a
type the engine does not know raises when the :class:`Spec` is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mf_ext.convert.errors import ConversionError

LAYER = "{L}"
EXPERT = "{E}"

Shape = tuple[str | int, ...]
LayerFilter = Callable[[int, dict], bool]


def eval_dim(expr: str | int, dims: dict[str, int]) -> int:
    """Evaluate ``"a*b*2+c"`` (sums of products of named dims and integers) against ``dims``."""
    if isinstance(expr, int):
        return expr
    total = 0
    for product in str(expr).split("+"):
        out = 1
        for term in product.split("*"):
            term = term.strip()
            if term.isdigit():
                out *= int(term)
            elif term in dims:
                out *= int(dims[term])
            else:
                raise ConversionError(f"shape expression {expr!r} names unknown dimension {term!r}")
        total += out
    return total


def eval_shape(shape: Sequence[str | int], dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(eval_dim(e, dims) for e in shape)


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ----------------------------------------------------------------------------------------------- one-tensor ops
class Op:
    """An invertible transform of one tensor; ``forward`` is hf->ms, ``inverse(arr, dims, shape)`` gives back
    the ``shape`` that ``forward`` was given."""

    def forward(self, arr: np.ndarray, dims: dict[str, int]) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, arr: np.ndarray, dims: dict[str, int], shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def shape(self, shape: tuple[int, ...], dims: dict[str, int]) -> tuple[int, ...]:
        """The output shape of ``forward`` for an input of ``shape``; raises if the input cannot be taken."""
        return shape


@dataclass(frozen=True)
class Transpose(Op):
    """Transpose (2-D by default: e.g. a Conv1D-style HF weight stored as (in, out)); ``axes`` for more dims."""

    axes: tuple[int, ...] | None = None

    def forward(self, arr, dims):
        return np.ascontiguousarray(arr.transpose(self.axes))

    def inverse(self, arr, dims, shape):
        back = None if self.axes is None else tuple(np.argsort(self.axes))
        return np.ascontiguousarray(arr.transpose(back))

    def shape(self, shape, dims):
        if self.axes is None:
            return tuple(reversed(shape))
        if sorted(self.axes) != list(range(len(shape))):
            raise ConversionError(f"Transpose{self.axes} does not fit a tensor of shape {list(shape)}")
        return tuple(shape[a] for a in self.axes)


@dataclass(frozen=True)
class RotaryPermute(Op):
    """Interleaved rotary pairs (Meta, GPT-J style) -> half-split (rotate-half) layout, per head.

    ``heads`` names the head count (a dim expression or an int): the rows of the tensor are ``heads`` blocks.
    Only ``rot_dim`` rows of each block, starting at ``offset``, are permuted (partial rotary: ChatGLM's rotary
    half, MLA's rope part after the no-rope part); ``rot_dim=None`` means the whole block from ``offset``.
    """

    heads: str | int = "heads"
    rot_dim: str | int | None = None
    offset: str | int = 0

    def _blocks(self, arr, dims):
        h = eval_dim(self.heads, dims)
        rows = arr.shape[0]
        if h <= 0 or rows % h:
            raise ConversionError(f"RotaryPermute: {rows} rows do not split into {self.heads!r} = {h} heads")
        hd = rows // h
        off = eval_dim(self.offset, dims)
        rd = hd - off if self.rot_dim is None else eval_dim(self.rot_dim, dims)
        if rd % 2 or off < 0 or off + rd > hd:
            raise ConversionError(
                f"RotaryPermute: rot_dim {rd} from offset {off} does not fit a head of {hd} rows (needs an even "
                f"rot_dim inside the head)"
            )
        return h, hd, off, rd

    def _permute(self, arr, dims, inverse):
        h, hd, off, rd = self._blocks(arr, dims)
        rest = arr.shape[1:]
        if off == 0 and rd == hd:  # the whole head: one reshape, as it always was
            if inverse:
                return np.ascontiguousarray(arr.reshape(h, 2, hd // 2, *rest).swapaxes(1, 2)).reshape(arr.shape)
            return np.ascontiguousarray(arr.reshape(h, hd // 2, 2, *rest).swapaxes(1, 2)).reshape(arr.shape)
        out = np.array(arr, copy=True).reshape(h, hd, *rest)
        rot = arr.reshape(h, hd, *rest)[:, off : off + rd]
        if inverse:
            out[:, off : off + rd] = rot.reshape(h, 2, rd // 2, *rest).swapaxes(1, 2).reshape(h, rd, *rest)
        else:
            out[:, off : off + rd] = rot.reshape(h, rd // 2, 2, *rest).swapaxes(1, 2).reshape(h, rd, *rest)
        return out.reshape(arr.shape)

    def forward(self, arr, dims):
        return self._permute(arr, dims, inverse=False)

    def inverse(self, arr, dims, shape):
        return self._permute(arr, dims, inverse=True)

    def shape(self, shape, dims):
        self._blocks(np.empty((shape[0], 0)), dims)
        return shape


@dataclass(frozen=True)
class Reshape(Op):
    """Row-major reshape to ``shape`` (dim expressions); the inverse restores the source shape. Bytes unchanged."""

    to: Shape

    def forward(self, arr, dims):
        return arr.reshape(eval_shape(self.to, dims))

    def inverse(self, arr, dims, shape):
        return arr.reshape(shape)

    def shape(self, shape, dims):
        out = eval_shape(self.to, dims)
        if _size(out) != _size(shape):
            raise ConversionError(f"Reshape{tuple(self.to)}: {list(shape)} cannot become {list(out)}")
        return out


@dataclass(frozen=True)
class Chain(Op):
    """Several ops one after another (``forward`` left to right, ``inverse`` right to left)."""

    ops: tuple[Op, ...]

    def forward(self, arr, dims):
        for op in self.ops:
            arr = op.forward(arr, dims)
        return arr

    def inverse(self, arr, dims, shape):
        shapes = [tuple(shape)]
        for op in self.ops[:-1]:
            shapes.append(op.shape(shapes[-1], dims))
        for op, s in zip(reversed(self.ops), reversed(shapes), strict=True):
            arr = op.inverse(arr, dims, s)
        return arr

    def shape(self, shape, dims):
        for op in self.ops:
            shape = op.shape(shape, dims)
        return shape


# ----------------------------------------------------------------------------------------------- layouts
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

    # each part is a contiguous block of the fused tensor: stream views, copy nothing
    def fuse_chunks(self, parts, dims, chunk_bytes):
        yield from parts

    def split_chunks(self, arr, part_shapes, dims, chunk_bytes):
        out, start = [], 0
        for s in part_shapes:
            out.append([arr[start : start + s[0]]])
            start += s[0]
        return out


@dataclass(frozen=True)
class QkvGroups(Layout):
    """Parts packed per group: ``[a rows of group 0, b0, c0, a rows of group 1, b1, c1, ...]``.

    With q, k, v and ``groups="kv_heads"`` this is the layout a model that reshapes the fused projection to
    ``(groups, (rep + 2) * head_dim)`` and splits the last axis into ``(rep*head_dim, head_dim, head_dim)`` needs
    (MindFormers' ``w_qkv``, InternLM2's ``wqkv``). Weights and biases.
    """

    groups: str = "kv_heads"

    def _g(self, part_rows, dims):
        g = eval_dim(self.groups, dims)
        if g <= 0 or any(r % g for r in part_rows):
            raise ConversionError(f"QkvGroups: part rows {part_rows} do not split into {self.groups!r} = {g} groups")
        return g

    def fuse(self, parts, dims):
        g = self._g([p.shape[0] for p in parts], dims)
        rest = parts[0].shape[1:]
        grouped = [p.reshape(g, p.shape[0] // g, *rest) for p in parts]
        return np.concatenate(grouped, axis=1).reshape(-1, *rest)

    def split(self, arr, part_shapes, dims):
        g = self._g([s[0] for s in part_shapes], dims)
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
        g = self._g([p.shape[0] for p in parts], dims)
        grouped = [p.reshape(g, p.shape[0] // g, *p.shape[1:]) for p in parts]
        for i in range(g):
            for p in grouped:
                yield p[i]

    def split_chunks(self, arr, part_shapes, dims, chunk_bytes):
        g = self._g([s[0] for s in part_shapes], dims)
        per = [s[0] // g for s in part_shapes]
        grouped = arr.reshape(g, sum(per), *arr.shape[1:])
        starts = np.cumsum([0, *per])

        def one(a: int, n: int):  # a function, not a nested genexp: binds a and n now
            return (grouped[i, a : a + n] for i in range(g))

        return [one(int(a), n) for a, n in zip(starts[:-1], per, strict=True)]

    def shape(self, part_shapes, dims):
        self._g([s[0] for s in part_shapes], dims)
        return super().shape(part_shapes, dims)


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

    def shape(self, part_shapes, dims):
        if len({s for s in part_shapes}) != 1:
            raise ConversionError(f"RowInterleave needs parts of one shape, got {part_shapes}")
        return super().shape(part_shapes, dims)


# ----------------------------------------------------------------------------------------------- rule selection
def layers_below(key: str) -> LayerFilter:
    """Layers ``i < config[key]`` (e.g. the dense first ``first_k_dense_replace`` layers)."""
    return lambda i, cfg: i < int(cfg.get(key) or 0)


def layers_from(key: str) -> LayerFilter:
    """Layers ``i >= config[key]`` (e.g. the MoE layers after the dense ones; MTP layers past
    ``num_hidden_layers``)."""
    return lambda i, cfg: i >= int(cfg.get(key) or 0)


def layers_between(low: str, high: str) -> LayerFilter:
    """Layers ``config[low] <= i < config[high]``."""
    return lambda i, cfg: int(cfg.get(low) or 0) <= i < int(cfg[high])


def every_nth_layer(step_key: str, skip_key: str | None = None) -> LayerFilter:
    """Layers with ``(i + 1) % config[step_key] == 0`` and not listed in ``config[skip_key]`` (Qwen-MoE's
    ``decoder_sparse_step`` / ``mlp_only_layers``)."""

    def sel(i: int, cfg: dict) -> bool:
        step = int(cfg.get(step_key) or 1)
        skip = set(cfg.get(skip_key) or []) if skip_key else set()
        return (i + 1) % step == 0 and i not in skip

    return sel


def negate(pred: LayerFilter) -> LayerFilter:
    """The layers ``pred`` does not select."""
    return lambda i, cfg: not pred(i, cfg)


def both(a: LayerFilter, b: LayerFilter) -> LayerFilter:
    """The layers both select."""
    return lambda i, cfg: a(i, cfg) and b(i, cfg)


# ----------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True, kw_only=True)
class _Rule:
    when: str | None = None
    unless: str | None = None
    layers: LayerFilter | None = None
    optional: bool = False


@dataclass(frozen=True)
class Rename(_Rule):
    """One HF tensor <-> one MindSpore tensor; ``shape`` is the HF shape, ``op`` turns it into the MindSpore one."""

    hf: str
    ms: str
    shape: Shape
    op: Op | None = None


@dataclass(frozen=True)
class Fuse(_Rule):
    """Several HF tensors (``shapes``, in order) <-> one MindSpore tensor packed with ``layout``."""

    hf: tuple[str, ...]
    ms: str
    shapes: tuple[Shape, ...]
    layout: Layout


@dataclass(frozen=True)
class Split(_Rule):
    """One HF tensor packed with ``layout`` <-> several MindSpore tensors (``shapes``, in order): Fuse mirrored."""

    hf: str
    ms: tuple[str, ...]
    shapes: tuple[Shape, ...]
    layout: Layout


@dataclass(frozen=True)
class Regroup(_Rule):
    """N HF tensors <-> M MindSpore tensors through named parts.

    ``parts`` gives each part's shape; ``hf`` / ``ms`` map each tensor name to the parts it holds, in order,
    packed with ``hf_layout`` / ``ms_layout``. Each part must sit in exactly one tensor on each side.
    Example: HF ``{"x.wqkv": ("q", "k", "v")}`` with ``QkvGroups`` <-> MindSpore ``{"x.wq": ("q",),
    "x.w_kv": ("k", "v")}`` with ``Concat``.
    """

    parts: dict[str, Shape]
    hf: dict[str, tuple[str, ...]]
    ms: dict[str, tuple[str, ...]]
    hf_layout: Layout = Concat()
    ms_layout: Layout = Concat()


@dataclass(frozen=True)
class Stack(_Rule):
    """Per-expert HF tensors (names with ``{E}``) <-> one stacked MindSpore tensor, streamed one expert at a time.

    Per expert: the HF tensors ``hf`` (shapes ``shapes``) are packed with ``layout`` (when there are several),
    then ``op`` is applied; the expert blocks are stacked along a new axis 0 (``dims[experts]`` of them). The
    MindSpore shape is ``(E, *block)`` unless ``ms_shape`` declares the same bytes with another shape (a flat
    ``(E*hidden, 2*inter)``, say). ms->hf unstacks the same way backwards.
    """

    hf: str | tuple[str, ...]
    ms: str
    shapes: Shape | tuple[Shape, ...]
    layout: Layout | None = None
    op: Op | None = None
    experts: str = "experts"
    ms_shape: Shape | None = None

    @property
    def hf_names(self) -> tuple[str, ...]:
        return (self.hf,) if isinstance(self.hf, str) else tuple(self.hf)

    @property
    def part_shapes(self) -> tuple[Shape, ...]:
        s = self.shapes
        return (s,) if (not s or not isinstance(s[0], tuple)) else tuple(s)


@dataclass(frozen=True, kw_only=True)
class Drop(_Rule):
    """A tensor not carried over, with the reason. ``side`` says which checkpoint may hold it (``"hf"``: dropped
    by hf->ms; ``"ms"``: dropped by ms->hf). ``same_as`` names a tensor (same side) it must equal, checked on
    the data -- e.g. a tied ``lm_head.weight`` must be the embedding -- so dropping it loses nothing.
    A ``name`` ending in ``*`` drops every tensor with that prefix (e.g. a whole MTP layer ``model.layers.{L}.*``
    with ``layers=``), as long as no other rule takes it."""

    name: str = field(kw_only=False)
    reason: str = field(kw_only=False)
    optional: bool = True
    same_as: str | None = None
    side: str = "hf"

    @property
    def hf(self) -> str:  # the name pattern, whichever side (used for layer expansion)
        return self.name


def mcore_experts(
    gate: str, up: str, down: str, weight1: str, weight2: str, *, up_shape: Shape, down_shape: Shape, **select
) -> tuple[Stack, Stack]:
    """MindFormers mcore's flattened grouped-expert layout as two :class:`Stack` rules.

    ``weight1`` = per expert ``[gate^T | up^T]`` (hidden, 2*inter), stacked to ``(E*hidden, 2*inter)``;
    ``weight2`` = per expert ``down^T`` (inter, hidden), stacked to ``(E*inter, hidden)``. ``up_shape`` is the HF
    ``(inter, hidden)`` shape of gate/up, ``down_shape`` the HF ``(hidden, inter)`` one.
    """
    inter, hidden = up_shape
    return (
        Stack(
            (gate, up),
            weight1,
            (up_shape, up_shape),
            layout=Concat(),
            op=Transpose(),
            ms_shape=(f"experts*{hidden}", f"2*{inter}"),
            **select,
        ),
        Stack(down, weight2, down_shape, op=Transpose(), ms_shape=(f"experts*{inter}", down_shape[0]), **select),
    )


RULE_TYPES: tuple[type, ...] = (Rename, Fuse, Split, Regroup, Stack, Drop)
Rule = Rename | Fuse | Split | Regroup | Stack | Drop


# ----------------------------------------------------------------------------------------------- one-way dtype ops
@dataclass(frozen=True)
class Fp8BlockDequant:
    """float8_e4m3fn weights with float32 block scales -> ``dtype`` (bf16 unless ``--dtype`` says otherwise).

    DeepSeek-V3's released checkpoints: ``X.weight`` (out, in) in float8_e4m3fn beside ``X.weight_scale_inv``
    float32 of shape ``(ceil(out/128), ceil(in/128))``; the value is ``fp8 * scale`` of its 128x128 block
    (computed in float32). Applied to the source before the rules; the scale tensors are consumed by it. One way:
    ms->hf writes the dequantised dtype and drops ``quantization_config`` from config.json.
    """

    scale: str = "{}_scale_inv"  # the scale tensor's name, ``{}`` = the weight's name
    block: tuple[int, int] = (128, 128)
    dtype: str = "bfloat16"

    def scale_name(self, weight: str) -> str:
        return self.scale.replace("{}", weight)


DEQUANT_TYPES: tuple[type, ...] = (Fp8BlockDequant,)


# ----------------------------------------------------------------------------------------------- options, formats
@dataclass(frozen=True)
class Option:
    """A switch of the mapping (rules use it in ``when``/``unless``).

    hf->ms takes it from the user (else ``default``); ms->hf asks ``detect(names of the MindSpore checkpoint)``
    when the user did not say.
    """

    default: bool = False
    detect: Callable[[Iterable[str]], bool] | None = None
    help: str = ""


@dataclass(frozen=True)
class Format:
    """Another source layout a family reads (hf->ms only), e.g. Meta's ``consolidated.*.pth`` + ``params.json``.

    ``files`` is the glob that recognises it in the input folder; ``config(config_file JSON, tensor shapes)``
    gives the HF ``config.json`` equivalent; ``shard_axis(name)`` says along which axis model-parallel shards of
    a tensor are concatenated (None: replicated, shard 0 is taken).
    """

    rules: tuple[Rule, ...]
    files: str
    config: Callable[[dict, dict[str, tuple[int, ...]]], dict]
    config_file: str = "params.json"
    shard_axis: Callable[[str], int | None] | None = None
    options: dict[str, Option] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """A family's weight mapping (its HF format), plus optional other source formats.

    ``dims(hf_config) -> {name: int}`` must provide ``layers`` (how many values ``{L}`` takes, MTP layers
    included) and every name the shapes use; ``flags(hf_config) -> {name: bool}`` supplies config-derived flags
    (options are merged over them). ``generation_config(hf_config)`` builds ``generation_config.json`` for HF
    output; ``hf_config_from_ms(model_config)`` derives ``config.json`` from a MindFormers model config.
    """

    name: str
    rules: tuple[Rule, ...]
    dims: Callable[[dict], dict[str, int]]
    flags: Callable[[dict], dict[str, bool]] = field(default=lambda cfg: {})
    generation_config: Callable[[dict], dict] | None = None
    hf_config_from_ms: Callable[[dict], dict] | None = None
    options: dict[str, Option] = field(default_factory=dict)
    formats: dict[str, Format] = field(default_factory=dict)
    dequant: tuple[Fp8BlockDequant, ...] = ()

    def __post_init__(self) -> None:
        check_rules(self.name, self.rules)
        for key, fmt in self.formats.items():
            if not isinstance(fmt, Format):
                raise ConversionError(f"spec {self.name!r}: format {key!r} is a {type(fmt).__name__!r}, not a Format")
            check_rules(f"{self.name}/{key}", fmt.rules)
            _check_options(f"{self.name}/{key}", fmt.options)
        _check_options(self.name, self.options)
        for d in self.dequant:
            if not isinstance(d, DEQUANT_TYPES):
                raise ConversionError(
                    f"spec {self.name!r}: unknown dequant op {type(d).__name__!r}; "
                    f"known: {', '.join(t.__name__ for t in DEQUANT_TYPES)}"
                )


def _check_options(where: str, options: dict) -> None:
    for key, opt in options.items():
        if not isinstance(opt, Option):
            raise ConversionError(f"spec {where!r}: option {key!r} is a {type(opt).__name__!r}, not an Option")


def check_rules(where: str, rules: Sequence) -> None:
    """Raise for anything that is not a well-formed rule of this vocabulary, naming it."""
    known = ", ".join(t.__name__ for t in RULE_TYPES)
    for i, r in enumerate(rules):
        if not isinstance(r, RULE_TYPES):
            raise ConversionError(f"spec {where!r}: rule {i} is of unknown type {type(r).__name__!r}; known: {known}")
        what = f"spec {where!r}: rule {i} ({type(r).__name__})"
        ops = [getattr(r, "op", None)]
        layouts = [getattr(r, "layout", None)]
        if isinstance(r, Regroup):
            layouts = [r.hf_layout, r.ms_layout]
            for side, tensors in (("hf", r.hf), ("ms", r.ms)):
                held = [p for ps in tensors.values() for p in ps]
                if sorted(held) != sorted(r.parts):
                    raise ConversionError(
                        f"{what}: the {side} tensors must hold each part of {sorted(r.parts)} once, got {held}"
                    )
        for op in ops:
            if op is not None and not isinstance(op, Op):
                raise ConversionError(f"{what}: op {type(op).__name__!r} is not an Op")
            for sub in getattr(op, "ops", ()):
                if not isinstance(sub, Op):
                    raise ConversionError(f"{what}: op {type(sub).__name__!r} is not an Op")
        for lay in layouts:
            if lay is not None and not isinstance(lay, Layout):
                raise ConversionError(f"{what}: layout {type(lay).__name__!r} is not a Layout")
        if isinstance(r, Fuse) and len(r.hf) != len(r.shapes):
            raise ConversionError(f"{what}: {len(r.hf)} hf names but {len(r.shapes)} shapes")
        if isinstance(r, Split) and len(r.ms) != len(r.shapes):
            raise ConversionError(f"{what}: {len(r.ms)} ms names but {len(r.shapes)} shapes")
        if isinstance(r, Stack):
            if not all(EXPERT in n for n in r.hf_names) or EXPERT in r.ms:
                raise ConversionError(f"{what}: every hf name needs {EXPERT}, the ms name none")
            if len(r.hf_names) != len(r.part_shapes):
                raise ConversionError(f"{what}: {len(r.hf_names)} hf names but {len(r.part_shapes)} shapes")
            if len(r.hf_names) > 1 and r.layout is None:
                raise ConversionError(f"{what}: several hf tensors per expert need a layout")
        if r.layers is not None and not any(LAYER in n for n in rule_names(r)):
            raise ConversionError(f"{what}: layers= selects layers, but no name has {LAYER}")
        if isinstance(r, Drop) and r.side not in ("hf", "ms"):
            raise ConversionError(f"{what}: side must be 'hf' or 'ms', got {r.side!r}")


def rule_names(r) -> list[str]:
    """Every name pattern a rule mentions (both sides)."""
    if isinstance(r, Drop):
        return [r.name]
    if isinstance(r, Regroup):
        return [*r.hf, *r.ms]
    if isinstance(r, Stack):
        return [*r.hf_names, r.ms]
    hf = [r.hf] if isinstance(r.hf, str) else list(r.hf)
    ms = [r.ms] if isinstance(r.ms, str) else list(r.ms)
    return hf + ms
