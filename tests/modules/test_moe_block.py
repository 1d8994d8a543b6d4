"""The shared MoE block against HF transformers' sparse MoE blocks (Mixtral: top-2, renormalised; Qwen2-MoE: shared
expert with a sigmoid gate, with and without norm_topk_prob) holding the same random weights, and the
load-balancing loss against transformers' ``load_balancing_loss_func``."""

from __future__ import annotations

import numpy as np
import pytest
from blocks_helpers import GRAPH, PYNATIVE, set_mode, to_np

HIDDEN, INTER, EXPERTS = 16, 24, 6


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _moe_weights(block, expert_names: tuple[str, str, str]) -> dict[str, np.ndarray]:
    """HF block state -> the MoE cell's names; ``expert_names`` = HF (gate, up, down) names of one expert."""
    sd = {k: to_np(v) for k, v in block.state_dict().items()}
    n = len(block.experts)
    gate, up, down = expert_names
    out = {
        "router.dense.weight": sd["gate.weight"],
        "ffn.w1.weight": np.stack([sd[f"experts.{e}.{gate}.weight"] for e in range(n)]),
        "ffn.w3.weight": np.stack([sd[f"experts.{e}.{up}.weight"] for e in range(n)]),
        "ffn.w2.weight": np.stack([sd[f"experts.{e}.{down}.weight"] for e in range(n)]),
    }
    for ours, theirs in (("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj")):
        if f"shared_expert.{theirs}.weight" in sd:
            out[f"shared_experts.{ours}.weight"] = sd[f"shared_expert.{theirs}.weight"]
    if "shared_expert_gate.weight" in sd:
        out["shared_experts_gate.weight"] = sd["shared_expert_gate.weight"]
    return out


def _load(cell, weights):
    import mindspore as ms

    params = dict(cell.parameters_and_names())
    assert set(params) == set(weights), (sorted(params), sorted(weights))
    for name, value in weights.items():
        assert tuple(params[name].shape) == value.shape, name
        params[name].set_data(ms.Tensor(value))


def _hf_block(kind: str, norm_topk_prob: bool, top_k: int):
    import torch

    torch.manual_seed(0)
    if kind == "mixtral":
        from transformers import MixtralConfig
        from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

        cfg = MixtralConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_local_experts=EXPERTS,
                            num_experts_per_tok=top_k)  # fmt: skip
        return MixtralSparseMoeBlock(cfg).eval(), ("w1", "w3", "w2"), 0
    from transformers import Qwen2MoeConfig
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    cfg = Qwen2MoeConfig(hidden_size=HIDDEN, moe_intermediate_size=INTER, shared_expert_intermediate_size=20,
                         num_experts=EXPERTS, num_experts_per_tok=top_k, norm_topk_prob=norm_topk_prob)  # fmt: skip
    return Qwen2MoeSparseMoeBlock(cfg).eval(), ("gate_proj", "up_proj", "down_proj"), 20


@pytest.mark.parametrize(
    "kind,norm,top_k,mode",
    [
        ("mixtral", True, 2, PYNATIVE),
        ("qwen2_moe", False, 3, PYNATIVE),
        ("qwen2_moe", True, 1, PYNATIVE),
        ("mixtral", True, 2, GRAPH),
    ],
)
def test_moe_matches_hf_sparse_blocks(kind, norm, top_k, mode):
    import mindspore as ms
    import torch

    from mf_ext.modules import MoE

    set_mode(mode)
    block, names, shared = _hf_block(kind, norm, top_k)
    cell = MoE(HIDDEN, INTER, EXPERTS, top_k, norm_topk_prob=norm, shared_intermediate_size=shared,
               shared_gate=bool(shared))  # fmt: skip
    _load(cell, _moe_weights(block, names))
    x = _x(2, 7, HIDDEN)
    with torch.no_grad():
        want, want_logits = block(torch.tensor(x))
    got = cell(ms.Tensor(x)).asnumpy()
    assert got.shape == x.shape
    np.testing.assert_allclose(got, to_np(want), atol=1e-5, rtol=0)
    if mode == PYNATIVE:
        _, logits = cell.forward_with_logits(ms.Tensor(x))
        np.testing.assert_allclose(logits.asnumpy(), to_np(want_logits), atol=1e-5, rtol=0)


def test_routing_weights_are_the_sparse_topk_mask():
    import mindspore as ms

    from mf_ext.modules.moe import routing_weights

    set_mode(PYNATIVE)
    logits = _x(9, EXPERTS, seed=3)
    for norm in (False, True):
        got = routing_weights(ms.Tensor(logits), 2, norm).asnumpy()
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        top = np.argsort(-p, -1)[:, :2]
        want = np.zeros_like(p)
        np.put_along_axis(want, top, np.take_along_axis(p, top, -1), -1)
        if norm:
            want /= want.sum(-1, keepdims=True)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert ((got > 0).sum(-1) == 2).all()


def test_load_balancing_loss_matches_transformers():
    import mindspore as ms
    import torch
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    from mf_ext.modules import load_balancing_loss

    set_mode(PYNATIVE)
    layers = tuple(_x(11, EXPERTS, seed=s) * 3 for s in range(3))
    want = float(load_balancing_loss_func(tuple(torch.tensor(t) for t in layers), EXPERTS, 2))
    got = float(load_balancing_loss(tuple(ms.Tensor(t) for t in layers), EXPERTS, 2).asnumpy())
    assert got == pytest.approx(want, abs=1e-6)
    # balanced routing (every expert equally likely) gives top_k, a skewed one more
    assert float(load_balancing_loss((ms.Tensor(np.zeros((12, 4), np.float32)),), 4, 1).asnumpy()) <= 1.0 + 1e-6


def test_moe_rejects_bad_arguments():
    from mf_ext.modules import MoE

    with pytest.raises(ValueError, match="MoE.top_k"):
        MoE(HIDDEN, INTER, 4, 5)
    with pytest.raises(ValueError, match="MoE.shared_gate"):
        MoE(HIDDEN, INTER, 4, 2, shared_gate=True)
