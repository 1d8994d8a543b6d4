"""Rotary position embedding: inverse frequencies (default, linear, smoothed, dynamic NTK, yarn), tables and application.

``rope_parameters`` mirrors HF transformers' ``ROPE_INIT_FUNCTIONS`` (transformers/modeling_rope_utils.py) step by
step in float32, in HF's operation order, so the frequencies agree to about one ulp (torch's float32 ``pow`` is not
correctly rounded, so bit equality is out of reach); yarn's attention factor (mscale) comes with it. ``RotaryEmbedding`` turns positions into ``cos``/``sin`` tables once per forward (shared by every
layer) and ``apply_rotary`` rotates the first ``dim`` channels of each head in one of two layouts:

- ``"half"`` (Llama, Qwen, Mistral ...): channel ``i`` pairs with ``i + dim/2`` (HF ``rotate_half``);
- ``"interleaved"`` (GLM/ChatGLM): channel ``2i`` pairs with ``2i + 1`` (HF GLM's ``rotate_half``).

The sign of ``rotate_half`` lives in the ``sin`` table (``[-sin | +sin]`` or ``[-s0, s0, -s1, s1, ...]``) so the
application is one swap, two multiplies and an add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

__all__ = ["ROPE_KINDS", "RopeConfig", "RotaryEmbedding", "apply_rotary", "rope_parameters"]

# "smoothed": low frequencies divided by ``factor``, high ones kept, a smooth ramp between the two wavelength bands
# (HF calls it after the family that introduced it; a family maps its HF name here with ``kind_aliases``).
ROPE_KINDS = ("default", "linear", "smoothed", "dynamic", "yarn")
_REQUIRED = {
    "default": (),
    "linear": ("factor",),
    "smoothed": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "dynamic": ("factor",),
    "yarn": ("factor",),
}


@dataclass(frozen=True)
class RopeConfig:
    """What the rotary embedding of a model computes.

    Attributes:
        dim: rotated channels per head (``int(head_dim * partial_rotary_factor)``; even).
        theta: HF ``rope_theta``.
        kind: one of ``ROPE_KINDS``.
        scaling: HF ``rope_scaling`` entries besides the kind, as ``(key, value)`` pairs.
        max_position_embeddings: HF ``max_position_embeddings`` (dynamic NTK's reference length, yarn's fallback
            for ``original_max_position_embeddings``).
        style: ``"half"`` or ``"interleaved"``.
    """

    dim: int
    theta: float = 10000.0
    kind: str = "default"
    scaling: tuple = field(default=())
    max_position_embeddings: int = 2048
    style: str = "half"

    def __post_init__(self):
        if not isinstance(self.dim, int) or self.dim <= 0 or self.dim % 2:
            raise ValueError(f"RopeConfig.dim: expected a positive even int, got {self.dim!r}")
        if self.kind not in ROPE_KINDS:
            raise ValueError(f"RopeConfig.kind: {self.kind!r} is not supported; expected one of {ROPE_KINDS}")
        if self.style not in ("half", "interleaved"):
            raise ValueError(f"RopeConfig.style: expected 'half' or 'interleaved', got {self.style!r}")
        missing = [k for k in _REQUIRED[self.kind] if k not in self.params]
        if missing:
            raise ValueError(f"rope_scaling: rope_type {self.kind!r} needs keys {missing}, got {self.params!r}")

    @property
    def params(self) -> dict:
        return dict(self.scaling)

    @classmethod
    def from_hf(
        cls,
        head_dim: int,
        rope_theta: float,
        rope_scaling: dict | None = None,
        max_position_embeddings: int = 2048,
        partial_rotary_factor: float = 1.0,
        style: str = "half",
        kind_aliases: dict[str, str] | None = None,
    ) -> RopeConfig:
        """From HF config fields; ``rope_scaling`` may spell the kind ``rope_type`` or ``type`` (MindFormers).

        ``kind_aliases`` maps a family's HF ``rope_type`` names onto ``ROPE_KINDS`` (e.g. the name HF gives the
        smoothed-band scaling).
        """
        scaling = dict(rope_scaling or {})
        kind = scaling.pop("rope_type", None) or scaling.pop("type", None) or "default"
        scaling.pop("type", None)
        kind = (kind_aliases or {}).get(kind, kind)
        return cls(
            dim=int(head_dim * partial_rotary_factor),
            theta=float(rope_theta),
            kind=kind,
            scaling=tuple(sorted(scaling.items())),
            max_position_embeddings=int(max_position_embeddings),
            style=style,
        )


def _pow32(base, exponent: np.ndarray) -> np.ndarray:
    """float32 ``base ** exponent`` rounded from float64: torch's float32 pow is accurate to about 1 ulp, numpy's
    float32 ``power`` is not (7 of 32 llama frequencies off by an ulp); this agrees with torch on >99% of values."""
    return np.power(np.float64(base), np.asarray(exponent, dtype=np.float32).astype(np.float64)).astype(np.float32)


def _default_inv_freq(dim: int, base) -> np.ndarray:
    # HF: 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), all in float32.
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (np.float32(1.0) / _pow32(base, exponent)).astype(np.float32)


def _yarn_get_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_parameters(rope: RopeConfig, seq_len: int | None = None) -> tuple[np.ndarray, float]:
    """``(inv_freq float32 (dim // 2,), attention_factor)`` as HF's ``ROPE_INIT_FUNCTIONS[kind]`` returns them.

    ``seq_len`` matters only for ``dynamic`` (the current length; ``None`` = ``max_position_embeddings``).
    """
    dim, theta, p = rope.dim, rope.theta, rope.params
    f32 = np.float32
    if rope.kind == "default":
        return _default_inv_freq(dim, theta), 1.0
    if rope.kind == "linear":
        return (_default_inv_freq(dim, theta) / f32(p["factor"])).astype(f32), 1.0
    if rope.kind == "smoothed":
        inv_freq = _default_inv_freq(dim, theta)
        factor = f32(p["factor"])
        low, high = f32(p["low_freq_factor"]), f32(p["high_freq_factor"])
        old_ctx = f32(p["original_max_position_embeddings"])
        low_freq_wavelen, high_freq_wavelen = old_ctx / low, old_ctx / high
        wavelen = f32(2 * math.pi) / inv_freq
        scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq).astype(f32)
        smooth = ((old_ctx / wavelen - low) / (high - low)).astype(f32)
        smoothed = ((1 - smooth) * scaled / factor + smooth * scaled).astype(f32)
        is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
        return np.where(is_medium, smoothed, scaled).astype(f32), 1.0
    if rope.kind == "dynamic":
        max_pos = rope.max_position_embeddings
        length = max_pos if seq_len is None else max(int(seq_len), max_pos)
        return _default_inv_freq(dim, _dynamic_base(rope, np.float32(length))), 1.0
    # yarn
    factor = p["factor"]
    attention_factor = p.get("attention_factor")
    mscale, mscale_all_dim = p.get("mscale"), p.get("mscale_all_dim")
    old_ctx = p.get("original_max_position_embeddings") or rope.max_position_embeddings
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(_yarn_get_mscale(factor, mscale) / _yarn_get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = _yarn_get_mscale(factor)
    beta_fast = p.get("beta_fast") or 32
    beta_slow = p.get("beta_slow") or 1

    def correction_dim(rotations):
        return (dim * math.log(old_ctx / (rotations * 2 * math.pi))) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # HF: prevents a division by zero
    pos_freqs = _pow32(theta, np.arange(0, dim, 2).astype(f32) / f32(dim))
    inv_extrapolation = (f32(1.0) / pos_freqs).astype(f32)
    inv_interpolation = (f32(1.0) / (f32(factor) * pos_freqs)).astype(f32)
    ramp = np.clip((np.arange(dim // 2, dtype=f32) - f32(low)) / f32(high - low), 0, 1).astype(f32)
    extrapolation = (f32(1) - ramp).astype(f32)
    inv_freq = inv_interpolation * (f32(1) - extrapolation) + inv_extrapolation * extrapolation
    return inv_freq.astype(f32), float(attention_factor)


def _dynamic_base(rope: RopeConfig, length):
    """Dynamic NTK's base for a float32 ``length`` (already >= max_position_embeddings), in HF's float32 steps."""
    f32 = np.float32
    factor, max_pos, dim = rope.params["factor"], rope.max_position_embeddings, rope.dim
    ratio = (f32(factor) * length / f32(max_pos) - f32(factor - 1)).astype(f32)
    return (f32(rope.theta) * _pow32(ratio, f32(dim / (dim - 2)))).astype(f32)


class RotaryEmbedding(nn.Cell):
    """``cos``/``sin`` tables for the given positions, laid out for :func:`apply_rotary`.

    ``construct(positions, rope_len=None)``: ``positions`` int32 ``(seq,)`` (shared by the batch) or ``(batch, seq)``;
    returns tables of shape ``(seq, 1, dim)`` or ``(batch, seq, 1, dim)`` in ``dtype`` (they broadcast over heads of
    a ``(batch, seq, heads, head_dim)`` tensor). ``rope_len`` (int32 scalar, dynamic NTK only) is HF's "current
    sequence length" (``max(position_ids) + 1`` when not given); dynamic NTK recomputes its frequencies from it in
    the graph, the other kinds use fixed frequencies.
    """

    def __init__(self, rope: RopeConfig, dtype=ms.float32):
        super().__init__()
        inv_freq, attention_factor = rope_parameters(rope)
        self.inv_freq = Tensor(inv_freq.reshape(1, -1))
        self.attention_factor = float(attention_factor)
        self.interleaved = rope.style == "interleaved"
        self.dim = rope.dim
        self.dtype = dtype
        self.dynamic = rope.kind == "dynamic"
        if self.dynamic:
            params = rope.params
            self.exponent = Tensor(np.arange(0, rope.dim, 2, dtype=np.int64).astype(np.float32) / np.float32(rope.dim))
            self.factor = float(np.float32(params["factor"]))
            self.factor_minus_one = float(np.float32(params["factor"] - 1))
            self.max_pos = float(rope.max_position_embeddings)
            self.ntk_power = float(np.float32(rope.dim / (rope.dim - 2)))
            self.theta = float(np.float32(rope.theta))

    def _dynamic_inv_freq(self, positions, rope_len):
        if rope_len is None:
            length = ops.reduce_max(ops.cast(positions, ms.float32)) + 1.0
        else:
            length = ops.cast(rope_len, ms.float32).reshape(())
        length = ops.maximum(length, self.max_pos)
        base = self.theta * ops.pow(length * self.factor / self.max_pos - self.factor_minus_one, self.ntk_power)
        return (1.0 / ops.pow(base, self.exponent)).reshape(1, -1)

    def construct(self, positions, rope_len=None):
        inv_freq = self._dynamic_inv_freq(positions, rope_len) if self.dynamic else self.inv_freq
        pos = ops.cast(positions, ms.float32)
        if positions.ndim == 1:
            freqs = pos.reshape(-1, 1) * inv_freq
            table_shape = (positions.shape[0], 1, self.dim)
        else:
            freqs = pos.reshape(positions.shape[0], positions.shape[1], 1) * inv_freq
            table_shape = (positions.shape[0], positions.shape[1], 1, self.dim)
        cos = ops.cos(freqs)
        sin = ops.sin(freqs)
        if self.attention_factor != 1.0:
            cos = cos * self.attention_factor
            sin = sin * self.attention_factor
        if self.interleaved:
            cos = ops.stack((cos, cos), -1)
            sin = ops.stack((-sin, sin), -1)
        else:
            cos = ops.concat((cos, cos), -1)
            sin = ops.concat((-sin, sin), -1)
        return ops.cast(cos, self.dtype).reshape(table_shape), ops.cast(sin, self.dtype).reshape(table_shape)


def _swap_halves(x):
    half = x.shape[-1] // 2
    return ops.concat((x[..., half:], x[..., :half]), -1)


def _swap_pairs(x):
    pairs = x.reshape(x.shape[:-1] + (x.shape[-1] // 2, 2))
    return ops.concat((pairs[..., 1:], pairs[..., :1]), -1).reshape(x.shape)


def apply_rotary(x, cos, sin, interleaved: bool = False, rot_dim: int | None = None):
    """Rotate ``x`` ``(batch, seq, heads, head_dim)`` by tables from :class:`RotaryEmbedding`.

    Only the first ``rot_dim`` channels rotate (partial rotary); the rest pass through. ``x`` is computed in the
    tables' dtype and returned in its own.
    """
    dtype = x.dtype
    if dtype != cos.dtype:
        x = ops.cast(x, cos.dtype)
    head_dim = x.shape[-1]
    partial = rot_dim is not None and rot_dim < head_dim
    rot = x[..., :rot_dim] if partial else x
    rot = rot * cos + (_swap_pairs(rot) if interleaved else _swap_halves(rot)) * sin
    out = ops.concat((rot, x[..., rot_dim:]), -1) if partial else rot
    return out if out.dtype == dtype else ops.cast(out, dtype)
