"""Mixture-of-experts feed-forward block: softmax top-k router, experts stacked ``(E, out, in)``, optional shared
expert (with an optional sigmoid gate), and the Switch-Transformer load-balancing loss.

Parameter names are MindFormers' (its Llama MoE cells and the research MoE converters): ``router.dense.weight``
``(E, hidden)``, ``ffn.w1.weight`` / ``ffn.w3.weight`` ``(E, inter, hidden)`` (gate / up), ``ffn.w2.weight``
``(E, hidden, inter)`` (down), ``shared_experts.w1/w2/w3.weight``, ``shared_experts_gate.weight`` ``(1, hidden)``.
A family plugs it in with ``DecoderSpec.mlp_factory`` (dense layers keep the spec's MLP: return ``None``).

Compute choice (CPU, static shapes): every token goes through *every* expert (one batched matmul per projection
over the stacked weights) and the expert outputs are summed with the routing weights, which are zero outside each
token's top-k. That equals the sparse dispatch exactly (a zero weight adds an exact zero) with no data-dependent
shapes -- no gather/scatter of a variable number of tokens per expert, one graph for prefill and decode, gradients
for free -- at ``E / k`` times the expert FLOPs of a sparse dispatch. Right for the tiny and small models this runs
on CPU; large models want a grouped-matmul dispatch (Ascend), which is not this block.

Routing (HF's Mixtral / Qwen2-MoE / Qwen3-MoE): ``logits = router(x)``; ``p = softmax(logits)`` in fp32;
the top-k of ``p``; with ``norm_topk_prob`` divided by their sum; cast back to the compute dtype.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import Normal, initializer

from .attention import attention_bias
from .layers import Linear
from .mlp import SwiGLU, _check_act, activation

__all__ = [
    "ExpertLinear",
    "MoE",
    "MoELossMixin",
    "Router",
    "StackedExperts",
    "load_balancing_loss",
    "routing_weights",
]


class ExpertLinear(nn.Cell):
    """``E`` linear maps stored stacked as ``weight`` ``(E, out, in)``; ``construct(x (E, n, in)) -> (E, n, out)``."""

    def __init__(self, num_experts: int, in_features: int, out_features: int, param_dtype=ms.float32,
                 compute_dtype=ms.float32, std: float = 0.02):  # fmt: skip
        super().__init__()
        shape = (num_experts, out_features, in_features)
        self.weight = Parameter(initializer(Normal(std), shape, param_dtype), name="weight")
        self.compute_dtype = compute_dtype
        self.cast_weight = param_dtype != compute_dtype
        self.matmul = ops.BatchMatMul(transpose_b=True)

    def construct(self, x):
        weight = ops.cast(self.weight, self.compute_dtype) if self.cast_weight else self.weight
        return self.matmul(x, weight)


class StackedExperts(nn.Cell):
    """``E`` SwiGLU experts ``w2(act(w1 x) * w3 x)`` with stacked weights; ``construct(rows (n, hidden), weights
    (n, E)) -> (n, hidden)``: every expert on every row, summed with ``weights`` (zero outside the top-k)."""

    def __init__(self, num_experts: int, hidden_size: int, intermediate_size: int, act: str = "silu",
                 param_dtype=ms.float32, compute_dtype=ms.float32, std: float = 0.02):  # fmt: skip
        super().__init__()
        kw = {"param_dtype": param_dtype, "compute_dtype": compute_dtype, "std": std}
        self.num_experts = num_experts
        self.act = _check_act(act)
        self.w1 = ExpertLinear(num_experts, hidden_size, intermediate_size, **kw)
        self.w3 = ExpertLinear(num_experts, hidden_size, intermediate_size, **kw)
        self.w2 = ExpertLinear(num_experts, intermediate_size, hidden_size, **kw)

    def construct(self, rows, weights):
        xb = ops.tile(rows.expand_dims(0), (self.num_experts, 1, 1))  # (E, n, hidden)
        out = self.w2(activation(self.act, self.w1(xb)) * self.w3(xb))  # (E, n, hidden)
        return (out * weights.transpose(1, 0).expand_dims(-1)).sum(0)


class Router(nn.Cell):
    """``dense``: ``(E, hidden)`` logits projection (MindFormers' ``router.dense``)."""

    def __init__(self, hidden_size: int, num_experts: int, param_dtype=ms.float32, compute_dtype=ms.float32,
                 std: float = 0.02):  # fmt: skip
        super().__init__()
        self.dense = Linear(hidden_size, num_experts, False, param_dtype, compute_dtype, std)

    def construct(self, rows):
        return self.dense(rows)


def routing_weights(logits, top_k: int, norm_topk_prob: bool, dtype=ms.float32):
    """Dense ``(n, E)`` routing weights from router ``logits`` ``(n, E)``: softmax (fp32), top-k, optionally
    renormalised over the top-k, zero elsewhere; cast to ``dtype``."""
    probs = ops.softmax(ops.cast(logits, ms.float32), -1)
    values, index = ops.topk(probs, top_k)
    if norm_topk_prob:
        values = values / values.sum(-1, keepdims=True)
    onehot = ops.one_hot(index, probs.shape[-1], ops.ones((), ms.float32), ops.zeros((), ms.float32))  # (n, k, E)
    return ops.cast((onehot * values.expand_dims(-1)).sum(1), dtype)


def load_balancing_loss(router_logits: tuple, num_experts: int, top_k: int):
    """Switch-Transformer load-balancing loss over the router logits of all MoE layers (HF's
    ``load_balancing_loss_func`` without a padding mask): with ``f[k, e]`` the fraction of tokens whose k-th choice
    is expert ``e`` and ``P[e]`` the mean router probability of ``e``, both over every token of every layer,
    ``num_experts * sum(f * P)``."""
    logits = ops.concat([ops.cast(x, ms.float32) for x in router_logits], 0)
    probs = ops.softmax(logits, -1)
    _, index = ops.topk(probs, top_k)
    mask = ops.one_hot(index, num_experts, ops.ones((), ms.float32), ops.zeros((), ms.float32))  # (n, k, E)
    tokens_per_expert = ops.stop_gradient(mask.mean(0))
    return (tokens_per_expert * probs.mean(0).expand_dims(0)).sum() * num_experts


class MoE(nn.Cell):
    """Sparse MoE feed-forward block (see the module docstring); ``construct(x (..., hidden)) -> same shape``.

    Args:
        hidden_size, intermediate_size: sizes of each routed expert.
        num_experts, top_k: experts and experts per token; ``norm_topk_prob``: renormalise the top-k weights.
        shared_intermediate_size: a shared SwiGLU expert (``shared_experts``) every token goes through (0 = none);
            ``shared_gate``: scaled by ``sigmoid(shared_experts_gate(x))`` (a ``(1, hidden)`` projection).
        act: the experts' activation (``silu``).
    """

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        num_experts: int,
        top_k: int,
        norm_topk_prob: bool = True,
        shared_intermediate_size: int = 0,
        shared_gate: bool = False,
        act: str = "silu",
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        std: float = 0.02,
    ):
        super().__init__()
        if not 0 < top_k <= num_experts:
            raise ValueError(f"MoE.top_k: expected 1..num_experts={num_experts}, got {top_k!r}")
        if shared_gate and not shared_intermediate_size:
            raise ValueError("MoE.shared_gate: needs a shared expert (shared_intermediate_size > 0)")
        kw = {"param_dtype": param_dtype, "compute_dtype": compute_dtype, "std": std}
        self.num_experts, self.top_k, self.norm_topk_prob = num_experts, top_k, bool(norm_topk_prob)
        self.dtype = compute_dtype
        self.router = Router(hidden_size, num_experts, **kw)
        self.ffn = StackedExperts(num_experts, hidden_size, intermediate_size, act, **kw)
        self.has_shared = shared_intermediate_size > 0
        self.has_shared_gate = bool(shared_gate)
        if self.has_shared:
            self.shared_experts = SwiGLU(hidden_size, shared_intermediate_size, act=act, **kw)
        if self.has_shared_gate:
            self.shared_experts_gate = Linear(hidden_size, 1, False, **kw)

    def forward_with_logits(self, x):
        """``(y, router_logits (n, E))`` -- the logits feed :func:`load_balancing_loss`."""
        rows = x.reshape(-1, x.shape[-1])
        logits = self.router(rows)
        y = self.ffn(rows, routing_weights(logits, self.top_k, self.norm_topk_prob, self.dtype))
        if self.has_shared:
            shared = self.shared_experts(rows)
            if self.has_shared_gate:
                shared = ops.sigmoid(self.shared_experts_gate(rows)) * shared
            y = y + shared
        return y.reshape(x.shape), logits

    def construct(self, x):
        return self.forward_with_logits(x)[0]


def forward_with_router_logits(decoder, tokens):
    """``decoder`` (an ``mf_ext.modules.Decoder``) on ``tokens`` without a cache or padding, as its ``construct``
    computes it, also returning the router logits of every MoE layer (a tuple, layer order). The residual block is
    ``DecoderLayer``'s, spelled out so the MoE cells can hand their logits back."""
    seq = tokens.shape[1]
    slots = ops.arange(0, seq, 1, dtype=ms.int32)
    cos, sin = (None, None) if decoder.rotary is None else decoder.rotary(slots, None)
    args = (decoder.slopes, decoder.n_kv_heads, decoder.mask_min, decoder.softmax_type)
    full_bias = attention_bias(slots, seq, None, None, *args) if decoder.any_full else None
    window_bias = attention_bias(slots, seq, None, decoder.window, *args) if decoder.any_sliding else None
    h = ops.cast(decoder.tok_embeddings(tokens), decoder.dtype)
    if decoder.learned_positions:
        h = h + ops.cast(decoder.pos_embeddings(slots), decoder.dtype)
    router_logits = ()
    for i, layer in enumerate(decoder.layers):
        attn, _, _ = layer.attention(
            layer.attention_norm(h), cos, sin, window_bias if decoder.sliding[i] else full_bias
        )
        h = h + attn
        x = layer.ffn_norm(h)
        if isinstance(layer.feed_forward, MoE):
            y, logits = layer.feed_forward.forward_with_logits(x)
            router_logits = router_logits + (logits,)
        else:
            y = layer.feed_forward(x)
        h = h + y
    return decoder.norm_out(h), router_logits


class MoELossMixin:
    """For a ``CausalLM`` subclass with MoE layers (``class M(MoELossMixin, CausalLM)``): with
    ``config.output_router_logits`` the training loss is ``cross-entropy + config.router_aux_loss_coef *``
    :func:`load_balancing_loss` (HF's MoE causal LMs), and :meth:`loss_terms` reports both terms."""

    def __init__(self, config):
        super().__init__(config)
        moe = [layer.feed_forward for layer in self.model.layers if isinstance(layer.feed_forward, MoE)]
        self.moe_num_experts = moe[0].num_experts if moe else 0
        self.moe_top_k = moe[0].top_k if moe else 0
        use_aux = bool(getattr(config, "output_router_logits", False)) and bool(moe)
        self.router_aux_loss_coef = float(getattr(config, "router_aux_loss_coef", 0.0) or 0.0) if use_aux else 0.0

    def loss_terms(self, input_ids, labels, loss_mask=None):
        """``(cross_entropy, load_balancing_loss)`` of a training batch (MindFormers' shift, as ``_loss``)."""
        seq = input_ids.shape[1]
        hidden, router_logits = forward_with_router_logits(self.model, input_ids[:, : seq - 1])
        ce = self._cross_entropy(hidden, input_ids, labels, loss_mask)
        return ce, load_balancing_loss(router_logits, self.moe_num_experts, self.moe_top_k)

    def _loss(self, input_ids, labels, loss_mask=None):
        if not self.router_aux_loss_coef:
            # the plain loss, written out: MindSpore's graph parser recurses without end on ``super()._loss`` here
            seq = input_ids.shape[1]
            hidden, _ = self.model(input_ids[:, : seq - 1])
            return self._cross_entropy(hidden, input_ids, labels, loss_mask)
        ce, aux = self.loss_terms(input_ids, labels, loss_mask)
        return ce + self.router_aux_loss_coef * aux
