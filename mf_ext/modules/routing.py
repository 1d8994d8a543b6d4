"""Group-limited top-k routing for the shared MoE block: softmax or sigmoid scores, an optional score-correction
bias (used to choose experts, not to weight them), experts chosen only inside the best ``topk_group`` of ``n_group``
expert groups, optional renormalisation and a routed scaling factor.

``GroupedMoE`` is :class:`mf_ext.modules.MoE` (same stacked experts, shared expert and parameter names) with this
router; it adds ``router.e_score_correction_bias`` ``(E,)`` (float32, not trained) when ``correction_bias`` is on.

Routing of ``logits = router(x)`` (fp32), as HF transformers computes it for these layouts:

1. ``scores = softmax(logits)`` or ``sigmoid(logits)``; ``choice = scores (+ bias)``;
2. with ``n_group > 1``: each group's score is its best ``choice`` (``group_score="max"``) or the sum of its two
   best (``"top2_sum"``); ``choice`` is set to 0 outside the ``topk_group`` best groups;
3. the ``top_k`` experts by ``choice``; their weights are their ``scores`` (without the bias), divided by their sum
   (+1e-20) with ``norm_topk_prob``, times ``routed_scaling_factor``.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, ops

from .moe import MoE, Router

__all__ = ["BiasedRouter", "GroupedMoE", "grouped_routing_weights"]

SCORE_FNS = ("softmax", "sigmoid")
GROUP_SCORES = ("max", "top2_sum")


class BiasedRouter(Router):
    """:class:`Router` with ``e_score_correction_bias`` ``(E,)`` float32 (added to the scores to choose experts)."""

    def __init__(self, hidden_size: int, num_experts: int, param_dtype=ms.float32, compute_dtype=ms.float32,
                 std: float = 0.02):  # fmt: skip
        super().__init__(hidden_size, num_experts, param_dtype, compute_dtype, std)
        self.e_score_correction_bias = Parameter(
            Tensor(np.zeros(num_experts, np.float32)), name="e_score_correction_bias", requires_grad=False
        )


def grouped_routing_weights(
    logits,
    top_k: int,
    score_fn: str = "softmax",
    n_group: int = 1,
    topk_group: int = 1,
    group_score: str = "max",
    correction_bias=None,
    norm_topk_prob: bool = False,
    routed_scaling_factor: float = 1.0,
    dtype=ms.float32,
):
    """Dense ``(n, E)`` routing weights (zero outside each row's top-k) from router ``logits`` ``(n, E)``; see the
    module docstring."""
    logits = ops.cast(logits, ms.float32)
    n, num_experts = logits.shape
    scores = ops.softmax(logits, -1) if score_fn == "softmax" else ops.sigmoid(logits)
    choice = scores if correction_bias is None else scores + correction_bias.reshape(1, -1)
    if n_group > 1:
        per_group = num_experts // n_group
        grouped = choice.reshape(n, n_group, per_group)
        if group_score == "max":
            group_scores = ops.amax(grouped, -1)
        else:
            group_scores = ops.topk(grouped, 2)[0].sum(-1)
        _, group_index = ops.topk(group_scores, topk_group)
        one, zero = ops.ones((), ms.float32), ops.zeros((), ms.float32)
        group_mask = ops.one_hot(group_index, n_group, one, zero).sum(1)  # (n, n_group)
        expert_mask = ops.broadcast_to(group_mask.reshape(n, n_group, 1), (n, n_group, per_group))
        choice = ops.where(expert_mask.reshape(n, num_experts) > 0, choice, zero)
    _, index = ops.topk(choice, top_k)
    values = ops.gather_elements(scores, 1, index)
    if norm_topk_prob:
        values = values / (values.sum(-1, keepdims=True) + 1e-20)
    if routed_scaling_factor != 1.0:
        values = values * routed_scaling_factor
    onehot = ops.one_hot(index, num_experts, ops.ones((), ms.float32), ops.zeros((), ms.float32))  # (n, k, E)
    return ops.cast((onehot * values.expand_dims(-1)).sum(1), dtype)


class GroupedMoE(MoE):
    """:class:`MoE` with group-limited routing (see the module docstring).

    Args (besides :class:`MoE`'s): ``score_fn`` ``"softmax"``/``"sigmoid"``, ``n_group``/``topk_group``/
    ``group_score`` (``"max"``/``"top2_sum"``), ``correction_bias`` (a ``router.e_score_correction_bias``),
    ``routed_scaling_factor``.
    """

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        num_experts: int,
        top_k: int,
        norm_topk_prob: bool = False,
        shared_intermediate_size: int = 0,
        score_fn: str = "softmax",
        n_group: int = 1,
        topk_group: int = 1,
        group_score: str = "max",
        correction_bias: bool = False,
        routed_scaling_factor: float = 1.0,
        act: str = "silu",
        param_dtype=ms.float32,
        compute_dtype=ms.float32,
        std: float = 0.02,
    ):
        if score_fn not in SCORE_FNS:
            raise ValueError(f"GroupedMoE.score_fn: expected one of {SCORE_FNS}, got {score_fn!r}")
        if group_score not in GROUP_SCORES:
            raise ValueError(f"GroupedMoE.group_score: expected one of {GROUP_SCORES}, got {group_score!r}")
        n_group = int(n_group or 1)
        topk_group = int(topk_group or 1)
        if n_group > 1 and (num_experts % n_group or not 0 < topk_group <= n_group):
            raise ValueError(
                f"GroupedMoE.n_group: {n_group!r} groups with topk_group {topk_group!r} do not fit "
                f"{num_experts!r} experts"
            )
        if n_group > 1 and topk_group * (num_experts // n_group) < top_k:
            raise ValueError(f"GroupedMoE.top_k: {top_k!r} exceeds the experts of {topk_group!r} groups")
        super().__init__(hidden_size, intermediate_size, num_experts, top_k, norm_topk_prob, shared_intermediate_size,
                         False, act, param_dtype, compute_dtype, std)  # fmt: skip
        if correction_bias:
            self.router = BiasedRouter(hidden_size, num_experts, param_dtype, compute_dtype, std)
        self.has_bias = bool(correction_bias)
        self.score_fn, self.group_score = score_fn, group_score
        self.n_group, self.topk_group = n_group, topk_group
        self.routed_scaling_factor = float(routed_scaling_factor)

    def forward_with_logits(self, x):
        rows = x.reshape(-1, x.shape[-1])
        logits = ops.cast(self.router(rows), ms.float32)
        bias = self.router.e_score_correction_bias if self.has_bias else None
        weights = grouped_routing_weights(
            logits, self.top_k, self.score_fn, self.n_group, self.topk_group, self.group_score, bias,
            self.norm_topk_prob, self.routed_scaling_factor, self.dtype,
        )  # fmt: skip
        y = self.ffn(rows, weights)
        if self.has_shared:
            y = y + self.shared_experts(rows)
        return y.reshape(x.shape), logits
