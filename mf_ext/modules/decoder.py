"""A generic pre-norm decoder layer and decoder stack, configured by one ``DecoderSpec``.

A family describes its architecture as a ``DecoderSpec`` (a handful of switches: biases, fused projections, q/k norm,
rotary kind and layout, sliding window, ALiBi, MLP kind, norm kind, dtypes) and gets embeddings, layers, final norm,
rotary tables, masks and the static KV cache plumbing from here. Default parameter names are MindFormers' Llama
names (``tok_embeddings.embedding_weight``, ``layers.{i}.attention.wq``, ``feed_forward.w1``, ``attention_norm``,
``ffn_norm``, ``norm_out``); ``CausalLM.PARAM_RENAMES`` maps them to another layout's names.

Compile once per model: every ``DecoderLayer`` is a MindSpore cell-reuse cell (``lazy_inline``, policy ``"front"``:
the layer's graph is parsed and specialised once and inlined for every layer, which the CPU backend supports; the
default policy does not run on CPU). MindSpore shares the graph among cells with the same reuse key and silently
uses the first cell's graph for the others, so the key here is a fingerprint of each layer's structure (sub-cell
classes, attributes, primitives, parameter shapes/dtypes), computed when the graph is parsed: a layer changed after
construction (a LoRA wrapper on one layer, a different window) gets its own graph instead of a wrong one.
``MF_EXT_LAYER_REUSE=0`` when a model is built turns reuse off for it (every layer compiled separately, as before).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, lazy_inline, nn, ops

from .attention import Attention, alibi_slopes, attention_bias, cache_slots
from .layers import Embedding, LayerNorm, Linear, RMSNorm, RowNormLinear
from .mlp import GeluMLP, SwiGLU
from .rotary import RopeConfig, RotaryEmbedding

__all__ = ["Decoder", "DecoderLayer", "DecoderSpec", "layer_reuse_enabled", "structure_key"]


@dataclass(frozen=True)
class DecoderSpec:
    """Architecture switches of a decoder-only transformer (pre-norm residual blocks).

    Sizes: ``hidden_size``, ``num_layers``, ``num_heads``, ``vocab_size``, ``intermediate_size``, ``num_kv_heads``
    (``None`` = MHA), ``head_dim`` (``None`` = hidden_size // num_heads).

    Attention: ``qkv_bias``, ``o_bias``, ``qkv_concat`` (fused ``w_qkv``; ``qkv_layout`` ``"grouped"``
    (MindFormers' Llama) or ``"stacked"`` ([q; k; v])),
    ``qk_norm`` (per-head RMSNorm of q and k, eps ``qk_norm_eps`` or ``norm_eps``), ``softmax_scale`` (``None`` =
    head_dim ** -0.5), ``sliding_window`` (keys within the last ``sliding_window`` positions, HF's rule) on the layers
    in ``sliding_window_layers`` (``None`` = all), ``alibi`` (ALiBi bias, BLOOM/Baichuan2 slopes), ``rope``
    (a ``RopeConfig``; ``None`` = no rotary).

    Feed-forward: ``mlp`` ``"swiglu"`` or ``"gelu"``, ``mlp_act``, ``mlp_bias``, ``ffn_concat`` (fused
    ``w_gate_hidden``; ``None`` = follow ``qkv_concat``, as MindFormers does) with ``ffn_concat_layout``
    ``"interleaved"`` (MindFormers' Llama) or ``"halves"`` ([gate; up]), or ``mlp_factory(spec, layer_index) -> Cell``
    for another block (an MoE block: the layer calls it as ``mlp(x) -> y``).

    Attention block override: ``attention_factory(spec, layer_index) -> Cell`` (e.g. ``MLAttention``; called as
    :class:`Attention` is) and ``cache_head_dims`` ``(key_width, value_width)`` per cached head when that block
    caches other widths than ``head_dim`` (``None`` = ``head_dim`` for both).

    Norms: ``norm`` ``"rms"`` or ``"layer"`` (with ``norm_bias``), ``norm_eps``.
    Embeddings: ``learned_positions`` (size of a learned position table, GPT2; 0 = none), ``tie_word_embeddings``,
    ``lm_head_bias``, ``lm_head_norm`` (rows of the output projection L2-normalised in the forward pass, e.g.
    Baichuan2's NormHead; the stored weight is the checkpoint's).
    Dtypes (MindSpore dtypes): ``compute_dtype``, ``param_dtype``, ``embedding_dtype`` (``None`` = param_dtype),
    ``norm_dtype``, ``softmax_dtype``, ``rotary_dtype``; ``init_std``.
    """

    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int
    intermediate_size: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    qkv_bias: bool = False
    o_bias: bool = False
    qkv_concat: bool = False
    qkv_layout: str = "grouped"
    qk_norm: bool = False
    qk_norm_eps: float | None = None
    softmax_scale: float | None = None
    sliding_window: int | None = None
    sliding_window_layers: tuple[int, ...] | None = None
    alibi: bool = False
    rope: RopeConfig | None = None
    mlp: str = "swiglu"
    mlp_act: str | None = None
    mlp_bias: bool = False
    ffn_concat: bool | None = None
    ffn_concat_layout: str = "interleaved"
    mlp_factory: Callable | None = None
    attention_factory: Callable | None = None
    cache_head_dims: tuple[int, int] | None = None
    norm: str = "rms"
    norm_eps: float = 1e-6
    norm_bias: bool = True
    learned_positions: int = 0
    tie_word_embeddings: bool = False
    lm_head_bias: bool = False
    lm_head_norm: bool = False
    compute_dtype: object = ms.float32
    param_dtype: object = ms.float32
    embedding_dtype: object = None
    norm_dtype: object = ms.float32
    softmax_dtype: object = ms.float32
    rotary_dtype: object = ms.float32
    init_std: float = 0.02

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "num_heads", "vocab_size", "intermediate_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"DecoderSpec.{name}: expected a positive int, got {value!r}")
        if self.kv_heads <= 0 or self.num_heads % self.kv_heads:
            raise ValueError(
                f"DecoderSpec.num_kv_heads: expected a positive divisor of num_heads={self.num_heads}, "
                f"got {self.num_kv_heads!r}"
            )
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(
                f"DecoderSpec.hidden_size: {self.hidden_size!r} is not divisible by num_heads={self.num_heads!r} "
                "(set head_dim explicitly)"
            )
        if self.rope is not None and self.rope.dim > self.dim_per_head:
            raise ValueError(f"DecoderSpec.rope.dim: {self.rope.dim!r} exceeds head_dim {self.dim_per_head!r}")
        if self.mlp not in ("swiglu", "gelu"):
            raise ValueError(f"DecoderSpec.mlp: expected 'swiglu' or 'gelu', got {self.mlp!r}")
        if self.norm not in ("rms", "layer"):
            raise ValueError(f"DecoderSpec.norm: expected 'rms' or 'layer', got {self.norm!r}")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ValueError(
                f"DecoderSpec.sliding_window: expected a positive int or None, got {self.sliding_window!r}"
            )

    @property
    def kv_heads(self) -> int:
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def dim_per_head(self) -> int:
        return self.hidden_size // self.num_heads if self.head_dim is None else self.head_dim

    def is_sliding(self, layer: int) -> bool:
        """Whether ``layer`` attends through the sliding window."""
        if self.sliding_window is None:
            return False
        return self.sliding_window_layers is None or layer in self.sliding_window_layers


def make_norm(spec: DecoderSpec, dim: int | None = None) -> nn.Cell:
    """The spec's norm (``RMSNorm`` or ``LayerNorm``) over ``dim`` (default hidden_size)."""
    dim = spec.hidden_size if dim is None else dim
    if spec.norm == "layer":
        return LayerNorm(dim, spec.norm_eps, spec.norm_bias, spec.param_dtype, spec.norm_dtype)
    return RMSNorm(dim, spec.norm_eps, spec.param_dtype, spec.norm_dtype)


def make_attention(spec: DecoderSpec) -> Attention:
    rope = spec.rope
    return Attention(
        spec.hidden_size,
        spec.num_heads,
        spec.kv_heads,
        spec.dim_per_head,
        qkv_bias=spec.qkv_bias,
        o_bias=spec.o_bias,
        qkv_concat=spec.qkv_concat,
        qkv_layout=spec.qkv_layout,
        qk_norm=spec.qk_norm,
        qk_norm_eps=spec.norm_eps if spec.qk_norm_eps is None else spec.qk_norm_eps,
        rot_dim=None if rope is None else rope.dim,
        rope_interleaved=rope is not None and rope.style == "interleaved",
        softmax_scale=spec.softmax_scale,
        param_dtype=spec.param_dtype,
        compute_dtype=spec.compute_dtype,
        softmax_dtype=spec.softmax_dtype,
        rotary_dtype=spec.rotary_dtype,
        norm_dtype=spec.norm_dtype,
        std=spec.init_std,
    )


def make_mlp(spec: DecoderSpec) -> nn.Cell:
    kw = {"param_dtype": spec.param_dtype, "compute_dtype": spec.compute_dtype, "std": spec.init_std}
    if spec.mlp == "gelu":
        return GeluMLP(spec.hidden_size, spec.intermediate_size, spec.mlp_bias, spec.mlp_act or "gelu_new", **kw)
    ffn_concat = spec.qkv_concat if spec.ffn_concat is None else spec.ffn_concat
    act = spec.mlp_act or "silu"
    return SwiGLU(
        spec.hidden_size,
        spec.intermediate_size,
        spec.mlp_bias,
        ffn_concat,
        act,
        fused_layout=spec.ffn_concat_layout,
        **kw,
    )


def layer_reuse_enabled() -> bool:
    """Whether decoder layers share one compiled graph (``MF_EXT_LAYER_REUSE`` unset or not ``0``)."""
    return os.environ.get("MF_EXT_LAYER_REUSE", "1").strip() not in ("0", "false", "False", "no")


_SIMPLE = (bool, int, float, str, type(None))
_VOLATILE = frozenset({"arguments_key", "phase", "compile_phase", "current_phase"})


def _describe(value) -> str | None:
    if isinstance(value, _SIMPLE) or isinstance(value, (ms.dtype.Type, ops.Primitive)):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, _SIMPLE) for v in value):
        return repr(tuple(value))
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        digest = hashlib.sha1(value.asnumpy().tobytes(), usedforsecurity=False).hexdigest()
        return f"Tensor{tuple(value.shape)}{value.dtype}:{digest}"
    if callable(value) and not isinstance(value, nn.Cell):
        return f"callable:{getattr(value, '__qualname__', type(value).__name__)}:{id(value)}"
    return None


def structure_key(cell: nn.Cell) -> str:
    """A digest of everything in ``cell`` that shapes its compiled graph: for the cell and each sub-cell its path and
    class, its public plain attributes (numbers, strings, dtypes, primitives with their attributes, constant tensors,
    instance-level callables) and its parameters' names, shapes, dtypes and ``requires_grad``."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path, sub in cell.cells_and_names():
        digest.update(f"<{path}|{type(sub).__module__}.{type(sub).__qualname__}".encode())
        for name, value in sorted(vars(sub).items()):
            if name.startswith("_") or name in _VOLATILE:
                continue
            text = _describe(value)
            if text is not None:
                digest.update(f"|{name}={text}".encode())
        for name, param in sub._params.items():  # noqa: SLF001 - MindSpore keeps a cell's own parameters here
            if param is not None:
                digest.update(f"|{name}:{tuple(param.shape)}:{param.dtype}:{param.requires_grad}".encode())
    return digest.hexdigest()


class DecoderLayer(nn.Cell):
    """Pre-norm block: ``h = x + attention(attention_norm(x)); out = h + feed_forward(ffn_norm(h))``.

    ``construct(x, cos, sin, bias, k_cache=None, v_cache=None, slots=None)`` returns ``out`` without a cache and
    ``(out, k_cache, v_cache)`` (updated buffers) with one. ``mlp`` replaces the spec's feed-forward cell,
    ``attention`` its attention cell.
    """

    @lazy_inline(policy="front")
    def __init__(self, spec: DecoderSpec, mlp: nn.Cell | None = None, attention: nn.Cell | None = None):
        super().__init__()
        self._reuse_graph = layer_reuse_enabled()
        self.attention_norm = make_norm(spec)
        self.attention = make_attention(spec) if attention is None else attention
        self.ffn_norm = make_norm(spec)
        self.feed_forward = make_mlp(spec) if mlp is None else mlp

    # MindSpore's parser reads the reuse key from this attribute each time it parses the layer. In training mode
    # there is no key: MindFormers' training wrapper fails to compile reused cells on CPU, and MindFormers itself
    # turns lazy_inline off for single-device training; a training graph is compiled once per run anyway.
    @property
    def cell_init_args(self) -> str:
        if not self._reuse_graph or self.training:
            raise AttributeError("cell_init_args")  # no key: this layer is parsed on its own
        return f"lazy_inline_{type(self).__qualname__}_{structure_key(self)}"

    @cell_init_args.setter
    def cell_init_args(self, value: str) -> None:
        # lazy_inline's own key (its __init__ arguments) is replaced by the fingerprint above; nothing is stored, so
        # MindSpore's Cell never extends a key (it does when a child cell is set on a cell holding ``_cell_init_args``).
        return

    def construct(self, x, cos, sin, bias, k_cache=None, v_cache=None, slots=None):
        attn, k, v = self.attention(self.attention_norm(x), cos, sin, bias, k_cache, v_cache, slots)
        h = x + attn
        h = h + self.feed_forward(self.ffn_norm(h))
        if k_cache is None:
            return h
        return h, k, v


class Decoder(nn.Cell):
    """Embeddings, decoder layers and final norm; returns ``(hidden, updated_cache)``.

    ``construct(tokens, past_key_values=None, cache_position=None, position_ids=None, attention_mask=None,
    rope_len=None)``:

    - ``past_key_values``: ``(k_0, v_0, k_1, v_1, ...)`` static buffers ``(batch, n_kv_heads, max_len, head_dim)``;
      ``cache_position`` (int32 scalar Tensor) is the slot of ``tokens[:, 0]``. The updated buffers come back
      (``()`` without a cache).
    - ``position_ids`` ``(batch, seq)``: rotary/learned positions per row (left-padded batches); ``None`` = slots.
    - ``attention_mask`` ``(batch, kv_len)``: 1 = token, 0 = padding (HF meaning); ``kv_len`` = cache length with a
      cache, else ``seq``.
    - ``rope_len`` (int32 scalar, dynamic NTK only): the current sequence length; default max(position) + 1.

    Masks, rotary tables and cache write slots are computed once per call and shared by every layer.
    """

    def __init__(self, spec: DecoderSpec, layer_cls: type[nn.Cell] = DecoderLayer):
        super().__init__()
        self.num_layers = spec.num_layers
        self.dtype = spec.compute_dtype
        self.n_kv_heads = spec.kv_heads
        self.softmax_type = spec.softmax_dtype
        emb_dtype = spec.param_dtype if spec.embedding_dtype is None else spec.embedding_dtype
        self.tok_embeddings = Embedding(spec.vocab_size, spec.hidden_size, emb_dtype, spec.compute_dtype, spec.init_std)
        self.learned_positions = spec.learned_positions > 0
        if self.learned_positions:
            self.pos_embeddings = Embedding(
                spec.learned_positions, spec.hidden_size, emb_dtype, spec.compute_dtype, spec.init_std
            )
        layers = []
        for i in range(spec.num_layers):
            mlp = spec.mlp_factory(spec, i) if spec.mlp_factory is not None else None
            if spec.attention_factory is None:
                layers.append(layer_cls(spec, mlp))
            else:
                layers.append(layer_cls(spec, mlp, spec.attention_factory(spec, i)))
        self.layers = nn.CellList(layers)
        self.norm_out = make_norm(spec)
        self.rotary = None if spec.rope is None else RotaryEmbedding(spec.rope, spec.rotary_dtype)
        self.slopes = Tensor(alibi_slopes(spec.num_heads)) if spec.alibi else None
        self.window = spec.sliding_window
        self.sliding = tuple(spec.is_sliding(i) for i in range(spec.num_layers))
        self.any_sliding = any(self.sliding)
        self.any_full = not all(self.sliding)
        self.mask_min = float(np.finfo(np.float16 if spec.softmax_dtype == ms.float16 else np.float32).min)

    def construct(
        self, tokens, past_key_values=None, cache_position=None, position_ids=None, attention_mask=None, rope_len=None
    ):
        bs, seq = tokens.shape[0], tokens.shape[1]
        start = ops.zeros((), ms.int32) if cache_position is None else ops.cast(cache_position, ms.int32).reshape(())
        q_slot = ops.arange(0, seq, 1, dtype=ms.int32) + start  # where the new tokens sit in the sequence/cache
        positions = q_slot if position_ids is None else ops.cast(position_ids, ms.int32).reshape(bs, seq)
        cos, sin = None, None
        if self.rotary is not None:
            cos, sin = self.rotary(positions, rope_len)
        kv_len = seq if past_key_values is None else past_key_values[0].shape[2]
        full_bias, window_bias = None, None
        if self.any_full:
            full_bias = attention_bias(
                q_slot, kv_len, attention_mask, None, self.slopes, self.n_kv_heads, self.mask_min, self.softmax_type
            )
        if self.any_sliding:
            window_bias = attention_bias(
                q_slot,
                kv_len,
                attention_mask,
                self.window,
                self.slopes,
                self.n_kv_heads,
                self.mask_min,
                self.softmax_type,
            )
        h = ops.cast(self.tok_embeddings(tokens), self.dtype)
        if self.learned_positions:
            h = h + ops.cast(self.pos_embeddings(positions), self.dtype)
        new_cache = ()
        slots = None if past_key_values is None else cache_slots(start, seq, kv_len)
        # enumerate, not self.layers[i]: indexing a CellList makes MindSpore's parser visit every layer per access.
        for i, layer in enumerate(self.layers):
            bias = window_bias if self.sliding[i] else full_bias
            if past_key_values is None:
                h = layer(h, cos, sin, bias)
            else:
                h, k, v = layer(h, cos, sin, bias, past_key_values[2 * i], past_key_values[2 * i + 1], slots)
                new_cache = new_cache + (k, v)
        return self.norm_out(h), new_cache


def lm_head(spec: DecoderSpec) -> Linear:
    """The output projection ``(vocab, hidden)`` for ``spec`` (tie it to the embedding in the causal LM)."""
    cls = RowNormLinear if spec.lm_head_norm else Linear
    return cls(
        spec.hidden_size, spec.vocab_size, spec.lm_head_bias, spec.param_dtype, spec.compute_dtype, spec.init_std
    )
