"""Multi-head attention (MHA / GQA / MQA) with the variants model families need, the static KV cache and masks.

Variants: q/k/v and output biases, fused ``w_qkv`` in MindFormers' layout, per-head q/k RMSNorm (Qwen3), explicit
head_dim, rotary on the first ``rot_dim`` channels (half-split or interleaved), a softmax scale override, and an
additive score bias computed once per forward for all layers (causal / padding / sliding-window mask, ALiBi).

KV cache: the caller owns static-shape buffers ``(batch, n_kv_heads, max_len, head_dim)`` per layer and passes the
write position; new keys/values are written with a gather + select (no in-place scatter), so every shape stays
static and graph mode compiles one graph per input shape, on CPU and Ascend alike.

GQA never repeats k/v: each kv head's group of query heads is folded into the query-length axis, so one batched
matmul per step serves the whole group.
"""

from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from .layers import Linear, RMSNorm
from .rotary import apply_rotary

__all__ = ["Attention", "alibi_slopes", "attention_bias", "cache_slots", "write_cache"]


def alibi_slopes(num_heads: int) -> np.ndarray:
    """ALiBi head slopes (float32, ``(num_heads,)``), as BLOOM and Baichuan2-13B define them.

    For a power of two ``n``: ``start * start**i`` with ``start = 2 ** (-8 / n)``; otherwise the slopes of the closest
    lower power of two, followed by every other slope of twice that power.
    """

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_2(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_2(closest) + power_of_2(2 * closest)[0::2][: num_heads - closest]
    return np.asarray(slopes, dtype=np.float32)


def cache_slots(start, seq: int, max_len: int):
    """For writing ``seq`` new positions at ``[start, start + seq)`` of a ``max_len`` cache: the source index of every
    cache slot and whether the slot is written. Computed once per step and shared by all layers."""
    idx = ops.arange(0, max_len, 1, dtype=ms.int32) - start
    valid = ops.logical_and(idx >= 0, idx < seq).reshape(1, 1, max_len, 1)
    return ops.clip(idx, 0, seq - 1), valid


def write_cache(cache, new, src, valid):
    """Return ``cache`` ``(b, kv, max_len, d)`` with ``new`` ``(b, kv, s, d)`` written where ``valid``.

    A gather + select instead of an in-place scatter keeps every shape static and works in both modes.
    """
    if new.shape[2] == 1:  # decode step: broadcasting replaces the gather
        return ops.where(valid, new, cache)
    return ops.where(valid, ops.gather(new, src, 2), cache)


def attention_bias(
    q_slot,
    kv_len: int,
    attention_mask=None,
    window: int | None = None,
    slopes: Tensor | None = None,
    num_kv_heads: int = 1,
    mask_min: float = float(np.finfo(np.float32).min),
    dtype=ms.float32,
):
    """Additive score bias for queries at cache slots ``q_slot`` (int32 ``(seq,)``) over ``kv_len`` keys.

    Key ``j`` is visible to query ``i`` iff ``j <= slot(i)`` (causal), ``j > slot(i) - window`` (sliding window, HF's
    rule) and, with an ``attention_mask`` (``(batch, >= kv_len)``, 1 = token, 0 = padding), key ``j`` is not padding.
    Hidden keys get ``mask_min`` (HF's ``finfo.min``). With ALiBi ``slopes`` (``(heads,)`` float32) the visible
    scores also get ``slope_h * (j - slot(i))``.

    Shape: broadcastable to the scores ``(batch, num_kv_heads, heads // num_kv_heads, seq, kv_len)``.
    """
    seq = q_slot.shape[0]
    keys = ops.arange(0, kv_len, 1, dtype=ms.int32).reshape(1, -1)
    queries = q_slot.reshape(-1, 1)
    allowed = keys <= queries
    if window is not None:
        allowed = ops.logical_and(allowed, keys > queries - window)
    if attention_mask is not None:
        bs = attention_mask.shape[0]
        real = ops.cast(attention_mask[:, :kv_len], ms.int32) != 0
        allowed = ops.logical_and(allowed.reshape(1, seq, kv_len), real.reshape(bs, 1, kv_len))
        allowed = allowed.reshape(bs, 1, 1, seq, kv_len)
    bias = ops.cast(ops.logical_not(allowed), ms.float32) * mask_min
    if slopes is not None:
        distance = ops.cast(keys - queries, ms.float32)  # <= 0 for every visible key
        alibi = slopes.reshape(num_kv_heads, -1, 1, 1) * distance.reshape(1, 1, seq, kv_len)
        bias = bias + alibi.reshape(1, num_kv_heads, -1, seq, kv_len)
    return ops.cast(bias, dtype)


class Attention(nn.Cell):
    """Self-attention with rotary (optional), an additive bias and an optional static KV cache.

    Parameters (MindFormers' Llama names): ``wq``, ``wk``, ``wv`` (or fused ``w_qkv``: ``qkv_layout="grouped"``, rows
    grouped per kv head as ``[q heads of the group | k | v]`` (MindFormers' Llama); ``"stacked"``: ``[q; k; v]`` as
    ChatGLM's ``query_key_value``, Baichuan2's ``W_pack`` or GPT2's ``c_attn``), ``wo``; with ``qk_norm`` also ``q_norm``/``k_norm`` (RMSNorm over
    ``head_dim``, shared by all heads, applied before rotary as in Qwen3).

    ``construct(x, cos, sin, bias, k_cache=None, v_cache=None, slots=None) -> (out, k, v)``: ``x`` ``(b, s, hidden)``;
    ``cos``/``sin`` rotary tables or ``None`` (no rotary); ``bias`` from :func:`attention_bias`; with a cache, ``k``
    and ``v`` are the updated buffers (``slots`` from :func:`cache_slots`), else this step's keys and values.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        qkv_bias: bool = False,
        o_bias: bool = False,
        qkv_concat: bool = False,
        qkv_layout: str = "grouped",
        qk_norm: bool = False,
        qk_norm_eps: float = 1e-6,
        rot_dim: int | None = None,
        rope_interleaved: bool = False,
        softmax_scale: float | None = None,
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        softmax_dtype=ms.float32,
        rotary_dtype=ms.float32,
        norm_dtype=ms.float32,
        std: float = 0.02,
    ):
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_heads % num_kv_heads:
            raise ValueError(f"Attention: num_kv_heads {num_kv_heads!r} must divide num_heads {num_heads!r}")
        head_dim = hidden_size // num_heads if head_dim is None else head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.n_rep = num_heads // num_kv_heads
        if qkv_layout not in ("grouped", "stacked"):
            raise ValueError(f"Attention.qkv_layout: expected 'grouped' or 'stacked', got {qkv_layout!r}")
        self.qkv_concat = qkv_concat
        self.qkv_grouped = qkv_layout == "grouped"
        self.scale = head_dim**-0.5 if softmax_scale is None else float(softmax_scale)
        self.softmax_type = softmax_dtype
        self.rotary_type = rotary_dtype
        self.dtype = compute_dtype
        self.rot_dim = head_dim if rot_dim is None else rot_dim
        self.interleaved = rope_interleaved
        self.qk_norm = qk_norm
        q_out, kv_out = num_heads * head_dim, num_kv_heads * head_dim
        kw = {"param_dtype": param_dtype, "compute_dtype": compute_dtype, "std": std}
        if qkv_concat:
            self.w_qkv = Linear(hidden_size, q_out + 2 * kv_out, bias=qkv_bias, **kw)
        else:
            self.wq = Linear(hidden_size, q_out, bias=qkv_bias, **kw)
            self.wk = Linear(hidden_size, kv_out, bias=qkv_bias, **kw)
            self.wv = Linear(hidden_size, kv_out, bias=qkv_bias, **kw)
        self.wo = Linear(q_out, hidden_size, bias=o_bias, **kw)
        if qk_norm:
            self.q_norm = RMSNorm(head_dim, qk_norm_eps, param_dtype, norm_dtype)
            self.k_norm = RMSNorm(head_dim, qk_norm_eps, param_dtype, norm_dtype)
        self.qk_matmul = ops.BatchMatMul(transpose_b=True)
        self.pv_matmul = ops.BatchMatMul()

    def _project(self, x, cos, sin):
        """q (b, h, s, d), k and v (b, kv, s, d), q/k norm and rotary applied."""
        bs, seq = x.shape[0], x.shape[1]
        x = x.reshape(bs * seq, x.shape[2])  # projections on 2-D rows
        if self.qkv_concat and self.qkv_grouped:
            qkv = self.w_qkv(x).reshape(bs, seq, self.n_kv_heads, (self.n_rep + 2) * self.head_dim)
            q_width = self.n_rep * self.head_dim
            q = qkv[..., :q_width].reshape(bs, seq, self.n_heads, self.head_dim)
            k = qkv[..., q_width : q_width + self.head_dim]
            v = qkv[..., q_width + self.head_dim :]
        elif self.qkv_concat:
            qkv = self.w_qkv(x).reshape(bs, seq, -1)
            q_out, kv_out = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
            q = qkv[..., :q_out].reshape(bs, seq, self.n_heads, self.head_dim)
            k = qkv[..., q_out : q_out + kv_out].reshape(bs, seq, self.n_kv_heads, self.head_dim)
            v = qkv[..., q_out + kv_out :].reshape(bs, seq, self.n_kv_heads, self.head_dim)
        else:
            q = self.wq(x).reshape(bs, seq, self.n_heads, self.head_dim)
            k = self.wk(x).reshape(bs, seq, self.n_kv_heads, self.head_dim)
            v = self.wv(x).reshape(bs, seq, self.n_kv_heads, self.head_dim)
        if self.qk_norm:
            q = self.q_norm(q)
            k = self.k_norm(k)
        if cos is not None:
            qk = ops.concat((q, k), 2)  # (b, s, h + kv, d): one rotary pass for both
            qk = apply_rotary(qk, cos, sin, self.interleaved, self.rot_dim)
            q, k = qk[:, :, : self.n_heads], qk[:, :, self.n_heads :]
        return q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)

    def construct(self, x, cos, sin, bias, k_cache=None, v_cache=None, slots=None):
        bs, seq = x.shape[0], x.shape[1]
        q, k, v = self._project(x, cos, sin)
        if k_cache is not None:
            k = write_cache(k_cache, k, slots[0], slots[1])
            v = write_cache(v_cache, v, slots[0], slots[1])
        kv_len = k.shape[2]
        # GQA without repeating k/v: fold each kv head's query group into the query-length axis.
        q = q.reshape(bs, self.n_kv_heads, self.n_rep * seq, self.head_dim)
        scores = self.qk_matmul(q, k) * self.scale
        scores = ops.cast(scores, self.softmax_type).reshape(bs, self.n_kv_heads, self.n_rep, seq, kv_len) + bias
        probs = ops.cast(ops.softmax(scores, -1), self.dtype).reshape(bs, self.n_kv_heads, self.n_rep * seq, kv_len)
        out = self.pv_matmul(probs, v).reshape(bs, self.n_heads, seq, self.head_dim)
        out = out.transpose(0, 2, 1, 3).reshape(bs * seq, self.n_heads * self.head_dim)
        return self.wo(out).reshape(bs, seq, -1), k, v
