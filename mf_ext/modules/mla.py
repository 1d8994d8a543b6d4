"""Multi-head latent attention (MLA): queries and keys/values through low-rank latent projections, rotary on a
separate per-head slice, one shared rotary key for all heads.

Projections (MindFormers' names; the HF names these layouts use in brackets):

- queries: ``q_proj`` ``(heads * qk_head_dim, hidden)`` [``q_proj``], or with a query rank ``q2l_proj``
  ``(q_rank, hidden)`` -> ``lq_norm`` (RMSNorm) -> ``l2q_proj`` ``(heads * qk_head_dim, q_rank)``
  [``q_a_proj`` -> ``q_a_layernorm`` -> ``q_b_proj``]; each head's query is ``[nope | rope]``;
- keys/values: ``kv2l`` ``(kv_rank + rope_dim, hidden)`` [``kv_a_proj_with_mqa``] splits into the latent
  ``(kv_rank)`` and one rotary key ``(rope_dim)`` shared by every head; the latent goes through ``lkv_norm``
  [``kv_a_layernorm``] and ``lkv2kv`` ``(heads * (nope_dim + v_head_dim), kv_rank)`` [``kv_b_proj``], giving each
  head's ``[k_nope | v]``;
- ``wo`` ``(hidden, heads * v_head_dim)`` [``o_proj``].

Per head: ``k = [k_nope | rotary(k_rope)]``, ``q = [q_nope | rotary(q_rope)]``, ``softmax(q k^T * scale) v``.
Rotary acts on the rope slice only, with the decoder's tables: ``rope_interleaved`` rotates adjacent pairs
(``(x[2i], x[2i+1])``, the complex-number form), else the two halves. Pairs-in/pairs-out and a de-interleave
followed by a half rotation differ by one permutation applied to both q and k, so the scores are the same.
The two latent norms use their own epsilon (``latent_norm_eps``; the layouts above use 1e-6 whatever the model's).

KV cache: the expanded per-head keys ``(batch, heads, max_len, qk_head_dim)`` and values ``(batch, heads, max_len,
v_head_dim)`` are cached (``DecoderSpec.cache_head_dims`` gives the two widths), not the compressed latent: the
simplest static-shape form and the cheapest per step on CPU; it costs ``heads * (qk_head_dim + v_head_dim) /
(kv_rank + rope_dim)`` times the memory of a latent cache.

Plugged into a decoder with ``DecoderSpec.attention_factory`` and ``DecoderSpec.cache_head_dims``.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops

from .attention import write_cache
from .layers import Linear, RMSNorm
from .rotary import apply_rotary

__all__ = ["MLAttention"]


class MLAttention(nn.Cell):
    """Multi-head latent attention; ``construct(x, cos, sin, bias, k_cache=None, v_cache=None, slots=None) ->
    (out, k, v)`` as :class:`mf_ext.modules.Attention` (``bias`` from ``attention_bias`` with ``num_kv_heads =
    num_heads``; ``cos``/``sin`` tables of width ``rope_dim``).

    Args:
        hidden_size, num_heads: sizes.
        kv_rank, q_rank: latent widths (``q_rank=None``: plain ``q_proj``).
        nope_dim, rope_dim, v_head_dim: per-head widths (``qk_head_dim = nope_dim + rope_dim``).
        bias: biases on ``q2l_proj``, ``kv2l`` and ``wo`` (HF ``attention_bias``).
        latent_norm_eps: epsilon of ``lq_norm`` / ``lkv_norm``.
        rope_interleaved: rotary over adjacent pairs (else halves).
        softmax_scale: ``None`` = ``qk_head_dim ** -0.5``.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        kv_rank: int,
        nope_dim: int,
        rope_dim: int,
        v_head_dim: int,
        q_rank: int | None = None,
        bias: bool = False,
        latent_norm_eps: float = 1e-6,
        rope_interleaved: bool = True,
        softmax_scale: float | None = None,
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        softmax_dtype=ms.float32,
        norm_dtype=ms.float32,
        std: float = 0.02,
    ):
        super().__init__()
        for name, value in (("hidden_size", hidden_size), ("num_heads", num_heads), ("kv_rank", kv_rank),
                            ("rope_dim", rope_dim), ("v_head_dim", v_head_dim)):  # fmt: skip
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"MLAttention.{name}: expected a positive int, got {value!r}")
        if rope_dim % 2:
            raise ValueError(f"MLAttention.rope_dim: expected an even width, got {rope_dim!r}")
        self.n_heads = num_heads
        self.nope_dim, self.rope_dim, self.v_head_dim = nope_dim, rope_dim, v_head_dim
        self.qk_head_dim = nope_dim + rope_dim
        self.kv_rank = kv_rank
        self.has_q_rank = q_rank is not None
        self.interleaved = bool(rope_interleaved)
        self.scale = self.qk_head_dim**-0.5 if softmax_scale is None else float(softmax_scale)
        self.softmax_type = softmax_dtype
        self.dtype = compute_dtype
        kw = {"param_dtype": param_dtype, "compute_dtype": compute_dtype, "std": std}
        q_out = num_heads * self.qk_head_dim
        if self.has_q_rank:
            self.q2l_proj = Linear(hidden_size, q_rank, bias=bias, **kw)
            self.lq_norm = RMSNorm(q_rank, latent_norm_eps, param_dtype, norm_dtype)
            self.l2q_proj = Linear(q_rank, q_out, bias=False, **kw)
        else:
            self.q_proj = Linear(hidden_size, q_out, bias=False, **kw)
        self.kv2l = Linear(hidden_size, kv_rank + rope_dim, bias=bias, **kw)
        self.lkv_norm = RMSNorm(kv_rank, latent_norm_eps, param_dtype, norm_dtype)
        self.lkv2kv = Linear(kv_rank, num_heads * (nope_dim + v_head_dim), bias=False, **kw)
        self.wo = Linear(num_heads * v_head_dim, hidden_size, bias=bias, **kw)
        self.qk_matmul = ops.BatchMatMul(transpose_b=True)
        self.pv_matmul = ops.BatchMatMul()

    def _project(self, x, cos, sin):
        """q and k ``(b, h, s, qk_head_dim)``, v ``(b, h, s, v_head_dim)``, rotary applied."""
        bs, seq = x.shape[0], x.shape[1]
        rows = x.reshape(bs * seq, x.shape[2])
        if self.has_q_rank:
            q = self.l2q_proj(self.lq_norm(self.q2l_proj(rows)))
        else:
            q = self.q_proj(rows)
        q = q.reshape(bs, seq, self.n_heads, self.qk_head_dim)
        latent = self.kv2l(rows)
        kv = self.lkv2kv(self.lkv_norm(latent[:, : self.kv_rank]))
        kv = kv.reshape(bs, seq, self.n_heads, self.nope_dim + self.v_head_dim)
        k_rope = latent[:, self.kv_rank :].reshape(bs, seq, 1, self.rope_dim)
        q_rope = q[..., self.nope_dim :]
        if cos is not None:
            q_rope = apply_rotary(q_rope, cos, sin, self.interleaved)
            k_rope = apply_rotary(k_rope, cos, sin, self.interleaved)
        k_rope = ops.broadcast_to(k_rope, (bs, seq, self.n_heads, self.rope_dim))
        q = ops.concat((q[..., : self.nope_dim], q_rope), -1)
        k = ops.concat((kv[..., : self.nope_dim], k_rope), -1)
        v = kv[..., self.nope_dim :]
        return q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)

    def construct(self, x, cos, sin, bias, k_cache=None, v_cache=None, slots=None):
        bs, seq = x.shape[0], x.shape[1]
        q, k, v = self._project(x, cos, sin)
        if k_cache is not None:
            k = write_cache(k_cache, k, slots[0], slots[1])
            v = write_cache(v_cache, v, slots[0], slots[1])
        kv_len = k.shape[2]
        scores = self.qk_matmul(q, k) * self.scale
        scores = ops.cast(scores, self.softmax_type).reshape(bs, self.n_heads, 1, seq, kv_len) + bias
        probs = ops.cast(ops.softmax(scores, -1), self.dtype).reshape(bs, self.n_heads, seq, kv_len)
        out = self.pv_matmul(probs, v).transpose(0, 2, 1, 3).reshape(bs * seq, self.n_heads * self.v_head_dim)
        return self.wo(out).reshape(bs, seq, -1), k, v
