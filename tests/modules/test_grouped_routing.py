"""``GroupedMoE`` (group-limited routing) against HF transformers' ``DeepseekV2MoE`` (softmax, greedy and
group-limited greedy, routed scaling) and ``DeepseekV3MoE`` (sigmoid + correction bias, top-2-sum group scores,
renormalised) holding the same random weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import PYNATIVE, set_mode, to_np

HIDDEN, INTER, EXPERTS = 16, 8, 8


def _hf(version: int, method: str):
    import torch

    common = dict(hidden_size=HIDDEN, moe_intermediate_size=INTER, n_routed_experts=EXPERTS, num_experts_per_tok=3,
                  n_shared_experts=2, n_group=4, topk_group=2, routed_scaling_factor=2.5)  # fmt: skip
    torch.manual_seed(version)
    if version == 2:
        from transformers import DeepseekV2Config
        from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2MoE

        block = DeepseekV2MoE(DeepseekV2Config(**common, topk_method=method))
    else:
        from transformers import DeepseekV3Config
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE

        block = DeepseekV3MoE(DeepseekV3Config(**common, norm_topk_prob=True))
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        if version == 3:  # large enough to change which experts are chosen
            block.gate.e_score_correction_bias.copy_(torch.randn(EXPERTS) * 0.3)
    return block.eval()


def _weights(block) -> dict[str, np.ndarray]:
    sd = {k: to_np(v) for k, v in block.state_dict().items()}
    out = {"router.dense.weight": sd["gate.weight"]}
    if "gate.e_score_correction_bias" in sd:
        out["router.e_score_correction_bias"] = sd["gate.e_score_correction_bias"]
    for ours, theirs in (("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj")):
        out[f"ffn.{ours}.weight"] = np.stack([sd[f"experts.{e}.{theirs}.weight"] for e in range(EXPERTS)])
        out[f"shared_experts.{ours}.weight"] = sd[f"shared_experts.{theirs}.weight"]
    return out


@pytest.mark.parametrize("version,method", [(2, "greedy"), (2, "group_limited_greedy"), (3, "noaux_tc")])
def test_grouped_moe_matches_hf(version, method):
    import mindspore as ms
    import torch

    from mf_ext.modules.routing import GroupedMoE

    set_mode(PYNATIVE)
    block = _hf(version, method)
    grouped = method != "greedy"
    cell = GroupedMoE(HIDDEN, INTER, EXPERTS, 3, norm_topk_prob=version == 3, shared_intermediate_size=2 * INTER,
                      score_fn="softmax" if version == 2 else "sigmoid", n_group=4 if grouped else 1, topk_group=2,
                      group_score="max" if version == 2 else "top2_sum", correction_bias=version == 3,
                      routed_scaling_factor=2.5)  # fmt: skip
    params = dict(cell.parameters_and_names())
    weights = _weights(block)
    assert set(params) == set(weights), (sorted(params), sorted(weights))
    for name, value in weights.items():
        params[name].set_data(ms.Tensor(value))
    x = np.random.default_rng(0).standard_normal((2, 9, HIDDEN)).astype(np.float32)
    with torch.no_grad():
        want = block(torch.tensor(x)).numpy()
    np.testing.assert_allclose(cell(ms.Tensor(x)).asnumpy(), want, atol=2e-5, rtol=0)
