"""Feed-forward blocks: gated SwiGLU (Llama family) and the two-layer GELU MLP (GPT2).

Any cell with ``construct(x) -> y`` of the same shape can stand in for these in a decoder layer (an MoE block
does): see ``DecoderSpec.mlp_factory``.
"""

from __future__ import annotations

import math

import mindspore as ms
from mindspore import nn, ops

from .layers import Linear

__all__ = ["GeluMLP", "SwiGLU", "activation", "gelu_new"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu_new(x):
    """GELU, tanh approximation (GPT2's ``gelu_new``, HF ``NewGELUActivation``).

    Written as ``x * sigmoid(2u)``, which equals ``0.5 * x * (1 + tanh(u))``: MindSpore's CPU ``tanh`` and ``pow`` are
    fast approximations (errors ~1e-4 and ~2e-4 here), its ``sigmoid`` and products are accurate to ~1e-6.
    """
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))
    return x * ops.sigmoid(2.0 * inner)


def activation(name: str, x):
    """Apply the activation ``name`` (``silu``, ``gelu_new``/``gelu_pytorch_tanh``, ``gelu`` (erf), ``relu``)."""
    if name == "silu":
        return ops.silu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return gelu_new(x)
    if name == "gelu":
        return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
    return ops.relu(x)


ACTIVATIONS = ("silu", "gelu_new", "gelu_pytorch_tanh", "gelu", "relu")


def _check_act(act: str) -> str:
    if act not in ACTIVATIONS:
        raise ValueError(f"activation: {act!r} is not supported; expected one of {ACTIVATIONS}")
    return act


class SwiGLU(nn.Cell):
    """``w2(act(w1 x) * w3 x)``: ``w1`` gate, ``w3`` up, ``w2`` down (MindFormers' names).

    ``ffn_concat`` fuses gate and up into ``w_gate_hidden``: ``fused_layout="interleaved"``, rows interleaved
    (gate_0, up_0, gate_1, up_1, ...) as MindFormers' Llama fuses them, or ``"halves"``, ``[gate; up]`` as ChatGLM's
    ``dense_h_to_4h`` and Phi3's ``gate_up_proj``.
    """

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        bias: bool = False,
        ffn_concat: bool = False,
        act: str = "silu",
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        std: float = 0.02,
        fused_layout: str = "interleaved",
    ):
        super().__init__()
        if fused_layout not in ("interleaved", "halves"):
            raise ValueError(f"SwiGLU.fused_layout: expected 'interleaved' or 'halves', got {fused_layout!r}")
        kw = {"bias": bias, "param_dtype": param_dtype, "compute_dtype": compute_dtype, "std": std}
        self.ffn_concat = ffn_concat
        self.interleaved = fused_layout == "interleaved"
        self.ffn = intermediate_size
        self.act = _check_act(act)
        if ffn_concat:
            self.w_gate_hidden = Linear(hidden_size, 2 * intermediate_size, **kw)
        else:
            self.w1 = Linear(hidden_size, intermediate_size, **kw)
            self.w3 = Linear(hidden_size, intermediate_size, **kw)
        self.w2 = Linear(intermediate_size, hidden_size, **kw)

    def construct(self, x):
        rows = x.reshape(-1, x.shape[-1])  # 2-D rows: the linears need no reshapes
        if self.ffn_concat and self.interleaved:
            gate_up = self.w_gate_hidden(rows).reshape(-1, self.ffn, 2)
            gate, up = gate_up[..., 0], gate_up[..., 1]
        elif self.ffn_concat:
            gate_up = self.w_gate_hidden(rows)
            gate, up = gate_up[..., : self.ffn], gate_up[..., self.ffn :]
        else:
            gate, up = self.w1(rows), self.w3(rows)
        return self.w2(activation(self.act, gate) * up).reshape(x.shape)


class GeluMLP(nn.Cell):
    """``c_proj(act(c_fc x))`` with biases (GPT2's MLP; ``act`` defaults to ``gelu_new``)."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        bias: bool = True,
        act: str = "gelu_new",
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        std: float = 0.02,
        in_out_layout: bool = False,
    ):
        super().__init__()
        kw = {
            "bias": bias,
            "param_dtype": param_dtype,
            "compute_dtype": compute_dtype,
            "std": std,
            "in_out_layout": in_out_layout,
        }
        self.act = _check_act(act)
        self.c_fc = Linear(hidden_size, intermediate_size, **kw)
        self.c_proj = Linear(intermediate_size, hidden_size, **kw)

    def construct(self, x):
        rows = x.reshape(-1, x.shape[-1])
        return self.c_proj(activation(self.act, self.c_fc(rows))).reshape(x.shape)
