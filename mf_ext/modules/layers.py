"""Linear, embedding and normalisation cells: plain MindSpore ops with CPU kernels (Ascend runs them too).

Storage dtype and compute dtype are separate: a bf16 checkpoint on CPU (no bf16 MatMul/Gather kernels there) is
kept in bf16 and cast to the compute dtype inside the op, so the parameter and the checkpoint stay bf16.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import Normal, initializer

__all__ = ["Embedding", "LayerNorm", "Linear", "RMSNorm", "RowNormLinear"]


class Linear(nn.Cell):
    """``y = x @ weight.T (+ bias)`` with MindFormers' ``(out, in)`` weight layout.

    Args:
        in_features / out_features: sizes.
        bias: add a ``bias`` parameter of shape ``(out,)`` (stored in ``param_dtype``, added in compute dtype).
        param_dtype: storage dtype of ``weight``/``bias``; cast to ``compute_dtype`` in the op when they differ.
        compute_dtype: dtype of the matmul (fp32 or fp16; bf16 storage is computed in fp32 on CPU).
        std: normal init std (the checkpoint overwrites it).
        in_out_layout: store ``weight`` as ``(in, out)`` instead (MindFormers layouts that keep ``transpose_b=False``,
            e.g. its GPT2); the math is the same.

    ``weight``, ``matmul``, ``out_features`` and ``compute_dtype`` are read by ``mf_ext.train.lora``: keep them.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = False,
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        std: float = 0.02,
        in_out_layout: bool = False,
    ):
        super().__init__()
        shape = (in_features, out_features) if in_out_layout else (out_features, in_features)
        self.weight = Parameter(initializer(Normal(std), shape, param_dtype), name="weight")
        self.has_bias = bias
        self.bias = Parameter(initializer("zeros", (out_features,), param_dtype), name="bias") if bias else None
        self.in_features = in_features
        self.out_features = out_features
        self.compute_dtype = compute_dtype
        self.cast_weight = param_dtype != compute_dtype  # e.g. bf16 storage on CPU, where bf16 MatMul is missing
        self.matmul = ops.MatMul(transpose_b=not in_out_layout)

    def construct(self, x):
        weight = ops.cast(self.weight, self.compute_dtype) if self.cast_weight else self.weight
        if x.ndim == 2:  # the blocks feed 2-D activations: no reshapes (fewer graph nodes to compile per layer)
            y = self.matmul(x, weight)
        else:
            y = self.matmul(x.reshape(-1, x.shape[-1]), weight)
        if self.has_bias:
            y = y + (ops.cast(self.bias, self.compute_dtype) if self.cast_weight else self.bias)
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.out_features,))


class RowNormLinear(Linear):
    """``Linear`` whose weight rows are L2-normalised in the forward pass: ``y = x @ (W / ||W_row||).T``.

    The stored weight stays as the checkpoint holds it (any positive scale per row gives the same output); the norm
    is taken in float32, ``torch.nn.functional.normalize``'s rule (``max(||w||, 1e-12)``). An output head of this
    kind is Baichuan2's ``NormHead``.
    """

    def construct(self, x):
        weight = ops.cast(self.weight, ms.float32)
        norm = ops.sqrt((weight * weight).sum(-1, keepdims=True))
        weight = ops.cast(weight / ops.maximum(norm, 1e-12), self.compute_dtype)
        if x.ndim == 2:
            y = self.matmul(x, weight)
        else:
            y = self.matmul(x.reshape(-1, x.shape[-1]), weight)
        if self.has_bias:
            y = y + (ops.cast(self.bias, self.compute_dtype) if self.cast_weight else self.bias)
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.out_features,))


class Embedding(nn.Cell):
    """Token (or learned position) embedding table ``embedding_weight`` of shape ``(vocab, hidden)``."""

    def __init__(self, vocab_size: int, hidden_size: int, param_dtype=ms.float32, compute_dtype=ms.float32, std=0.02):
        super().__init__()
        self.embedding_weight = Parameter(
            initializer(Normal(std), (vocab_size, hidden_size), param_dtype), name="embedding_weight"
        )
        self.compute_dtype = compute_dtype
        self.cast_weight = param_dtype != compute_dtype  # CPU has no bf16 Gather kernel

    def construct(self, input_ids):
        table = ops.cast(self.embedding_weight, self.compute_dtype) if self.cast_weight else self.embedding_weight
        return ops.gather(table, input_ids, 0)


class RMSNorm(nn.Cell):
    """``x * rsqrt(mean(x^2) + eps) * weight`` over the last axis, normalised in ``compute_dtype``.

    The result is cast back to the input dtype before the weight multiply (HF Llama's order).
    """

    def __init__(self, dim: int, eps: float = 1e-6, param_dtype=ms.float32, compute_dtype=ms.float32):
        super().__init__()
        self.weight = Parameter(initializer("ones", (dim,), param_dtype), name="weight")
        self.eps = eps
        self.compute_type = compute_dtype

    def construct(self, x):
        dtype = x.dtype
        h = x if dtype == self.compute_type else ops.cast(x, self.compute_type)
        h = h * ops.rsqrt(ops.mean(ops.square(h), -1, True) + self.eps)
        if dtype != self.compute_type:
            h = ops.cast(h, dtype)
        weight = self.weight if self.weight.dtype == dtype else ops.cast(self.weight, dtype)
        return h * weight


class LayerNorm(nn.Cell):
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis (biased variance, as torch).

    Parameters are MindFormers' LayerNorm names ``gamma`` and ``beta`` (``beta`` only with ``bias``).
    """

    def __init__(
        self, dim: int, eps: float = 1e-5, bias: bool = True, param_dtype=ms.float32, compute_dtype=ms.float32
    ):
        super().__init__()
        self.gamma = Parameter(initializer("ones", (dim,), param_dtype), name="gamma")
        self.has_bias = bias
        self.beta = Parameter(initializer("zeros", (dim,), param_dtype), name="beta") if bias else None
        self.eps = eps
        self.compute_type = compute_dtype

    def construct(self, x):
        dtype = x.dtype
        h = x if dtype == self.compute_type else ops.cast(x, self.compute_type)
        mean = ops.mean(h, -1, True)
        centred = h - mean
        var = ops.mean(ops.square(centred), -1, True)
        h = centred * ops.rsqrt(var + self.eps)
        h = h * ops.cast(self.gamma, self.compute_type)
        if self.has_bias:
            h = h + ops.cast(self.beta, self.compute_type)
        return h if dtype == self.compute_type else ops.cast(h, dtype)
