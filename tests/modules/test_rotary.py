"""Rotary blocks against HF transformers: ``ROPE_INIT_FUNCTIONS`` (frequencies, attention factor) and the
``apply_rotary_pos_emb`` of Llama (half split), Phi (partial, half split) and GLM (partial, interleaved).

head_dim 64/128 so llama3's smoothing band and yarn's ramp hold several frequencies (asserted, so a parameter
change cannot silently make the comparison trivial).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.modules.blocks_helpers import GRAPH, PYNATIVE, set_mode, to_np

LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}
CASES = {
    "default": None,
    "linear": {"rope_type": "linear", "factor": 4.0},
    "llama3": LLAMA3,
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "yarn": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 128},
    "yarn-mscale": {
        "rope_type": "yarn",
        "factor": 40.0,
        "mscale": 0.707,
        "mscale_all_dim": 0.707,
        "beta_fast": 32,
        "beta_slow": 1,
        "original_max_position_embeddings": 64,
    },
    "yarn-mscale-unequal": {"rope_type": "yarn", "factor": 16.0, "mscale": 1.0, "mscale_all_dim": 0.5},
    "yarn-attention-factor-no-truncate": {
        "rope_type": "yarn",
        "factor": 4.0,
        "attention_factor": 1.25,
        "truncate": False,
        "beta_fast": 16,
        "beta_slow": 2,
    },
}


def _hf_config(head_dim: int, scaling: dict | None, theta: float = 500000.0, partial: float = 1.0, max_pos: int = 512):
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        hidden_size=head_dim * 4,
        num_attention_heads=4,
        head_dim=head_dim,
        rope_theta=theta,
        rope_scaling=dict(scaling) if scaling else None,
        max_position_embeddings=max_pos,
    )
    cfg.partial_rotary_factor = partial
    return cfg


def _ours(head_dim, scaling, theta=500000.0, partial=1.0, max_pos=512, style="half"):
    from mf_ext.modules import RopeConfig

    return RopeConfig.from_hf(head_dim, theta, scaling, max_pos, partial, style, kind_aliases={"llama3": "smoothed"})


@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("case", list(CASES))
def test_inv_freq_matches_hf_rope_init_functions(case, head_dim):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from mf_ext.modules import rope_parameters

    scaling = CASES[case]
    kind = scaling["rope_type"] if scaling else "default"
    cfg = _hf_config(head_dim, scaling)
    ref, ref_factor = ROPE_INIT_FUNCTIONS[kind](cfg, "cpu")
    ours, factor = rope_parameters(_ours(head_dim, scaling))
    assert ours.dtype == np.float32 and ours.shape == (head_dim // 2,)
    # torch's float32 pow is accurate to ~1 ulp, not correctly rounded: allow 2 ulp.
    np.testing.assert_allclose(ours, ref.numpy(), rtol=2.5e-7, atol=0)
    assert factor == pytest.approx(ref_factor, rel=1e-12, abs=0)
    if kind == "llama3":  # the smoothed band is populated (a head_dim-8 test would hold none)
        wavelen = 2 * math.pi / rope_parameters(_ours(head_dim, None))[0]
        medium = (wavelen >= 256 / 4.0) & (wavelen <= 256 / 1.0)
        assert medium.sum() >= 2, medium.sum()
    if kind == "yarn":  # the ramp between extrapolation and interpolation holds frequencies strictly inside
        default = rope_parameters(_ours(head_dim, None))[0]
        inside = (ours < default * (1 - 1e-6)) & (ours > default / scaling["factor"] * (1 + 1e-6))
        assert inside.sum() >= 1


@pytest.mark.parametrize("seq_len", [100, 512, 513, 3000])
def test_dynamic_ntk_matches_hf_for_a_sequence_length(seq_len):
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from mf_ext.modules import rope_parameters

    scaling = CASES["dynamic"]
    cfg = _hf_config(64, scaling)
    ref, _ = ROPE_INIT_FUNCTIONS["dynamic"](cfg, "cpu", seq_len=torch.tensor(seq_len))
    ours, _ = rope_parameters(_ours(64, scaling), seq_len=seq_len)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=2e-7, atol=0)
    if seq_len > 512:  # really rescaled
        assert not np.allclose(ours, rope_parameters(_ours(64, None))[0], rtol=1e-4)


def test_partial_rotary_factor_gives_fewer_frequencies():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from mf_ext.modules import rope_parameters

    cfg = _hf_config(128, CASES["yarn"], theta=10000.0, partial=0.5)
    ref, ref_factor = ROPE_INIT_FUNCTIONS["yarn"](cfg, "cpu")
    ours, factor = rope_parameters(_ours(128, CASES["yarn"], theta=10000.0, partial=0.5))
    assert ours.shape == (32,)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=2.5e-7, atol=0)
    assert factor == pytest.approx(ref_factor)


def test_rope_config_rejects_bad_values():
    from mf_ext.modules import RopeConfig

    with pytest.raises(ValueError, match=r"rope_type 'smoothed' needs keys \['high_freq_factor'"):
        RopeConfig.from_hf(
            64,
            1e4,
            {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8},
            kind_aliases={"llama3": "smoothed"},
        )
    with pytest.raises(ValueError, match=r"'llama3' is not supported"):  # a family must map HF's name
        RopeConfig.from_hf(64, 1e4, {"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(ValueError, match=r"'longrope' is not supported"):
        RopeConfig.from_hf(64, 1e4, {"rope_type": "longrope", "factor": 2.0})
    with pytest.raises(ValueError, match=r"RopeConfig.dim: expected a positive even int, got 7"):
        RopeConfig(dim=7)


def _q_k(batch, seq, heads, kv_heads, head_dim, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, seq, heads, head_dim)).astype(np.float32)
    k = rng.standard_normal((batch, seq, kv_heads, head_dim)).astype(np.float32)
    return q, k


def _ours_rotated(rope, q, k, positions, rope_len=None):
    import mindspore as ms

    from mf_ext.modules import RotaryEmbedding, apply_rotary

    cos, sin = RotaryEmbedding(rope)(ms.Tensor(positions, ms.int32), rope_len)
    interleaved = rope.style == "interleaved"
    return [apply_rotary(ms.Tensor(x), cos, sin, interleaved, rope.dim).asnumpy() for x in (q, k)]


@pytest.mark.parametrize("case", ["default", "llama3", "yarn-mscale", "dynamic"])
def test_tables_and_half_split_application_match_hf_llama(case):
    """HF LlamaRotaryEmbedding (incl. yarn's attention factor on cos/sin, dynamic's update) + apply_rotary_pos_emb."""
    import torch
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    set_mode(PYNATIVE)
    scaling = CASES[case]
    cfg = _hf_config(64, scaling, max_pos=128)
    positions = np.stack([np.arange(300), np.arange(300) + 7])  # past original lengths and max_pos
    q, k = _q_k(2, 300, 4, 2, 64)
    cos, sin = LlamaRotaryEmbedding(cfg)(torch.zeros(1), torch.from_numpy(positions))
    ref = apply_rotary_pos_emb(torch.from_numpy(q).transpose(1, 2), torch.from_numpy(k).transpose(1, 2), cos, sin)
    ours = _ours_rotated(_ours(64, scaling, max_pos=128), q, k, positions)
    # A one-ulp frequency difference (torch's pow) grows with the position: ~1e-7 * 306 * |q|.
    for got, want in zip(ours, ref, strict=True):
        assert np.abs(got - to_np(want.transpose(1, 2))).max() <= 2e-4


def test_partial_half_split_matches_hf_phi():
    import torch
    from transformers import PhiConfig
    from transformers.models.phi.modeling_phi import PhiRotaryEmbedding, apply_rotary_pos_emb

    set_mode(PYNATIVE)
    cfg = PhiConfig(hidden_size=256, num_attention_heads=4, partial_rotary_factor=0.5, rope_theta=10000.0)
    positions = np.arange(40)[None]
    q, k = _q_k(1, 40, 4, 4, 64, seed=1)
    cos, sin = PhiRotaryEmbedding(cfg)(torch.zeros(1), torch.from_numpy(positions))
    hq, hk = (torch.from_numpy(x).transpose(1, 2) for x in (q, k))
    # Phi splits the rotary part off before calling apply_rotary_pos_emb.
    rot = cos.shape[-1]
    rq, rk = apply_rotary_pos_emb(hq[..., :rot], hk[..., :rot], cos, sin)
    ref = [torch.cat((r, x[..., rot:]), -1).transpose(1, 2) for r, x in ((rq, hq), (rk, hk))]
    ours = _ours_rotated(_ours(64, None, theta=10000.0, partial=0.5), q, k, positions[0])
    for got, want, src in zip(ours, ref, (q, k), strict=True):
        assert np.abs(got - to_np(want)).max() <= 1e-5
        np.testing.assert_array_equal(got[..., 32:], src[..., 32:])  # the pass-through channels are untouched


@pytest.mark.parametrize("mode", [PYNATIVE, GRAPH], ids=["pynative", "graph"])
def test_interleaved_partial_matches_hf_glm(mode):
    """GLM: rotary on the first half of each head, channels paired (2i, 2i+1) (HF GlmForCausalLM's rotary)."""
    import mindspore as ms
    import torch
    from mindspore import nn
    from transformers import GlmConfig
    from transformers.models.glm.modeling_glm import GlmRotaryEmbedding, apply_rotary_pos_emb

    from mf_ext.modules import RotaryEmbedding, apply_rotary

    set_mode(mode)
    cfg = GlmConfig(hidden_size=512, num_attention_heads=4, head_dim=128, partial_rotary_factor=0.5, rope_theta=10000.0)
    positions = np.stack([np.arange(30), np.maximum(np.arange(30) - 5, 0)])  # second row: left-padded positions
    q, k = _q_k(2, 30, 4, 2, 128, seed=2)
    cos, sin = GlmRotaryEmbedding(cfg)(torch.zeros(1), torch.from_numpy(positions))
    ref = apply_rotary_pos_emb(torch.from_numpy(q).transpose(1, 2), torch.from_numpy(k).transpose(1, 2), cos, sin)
    rope = _ours(128, None, theta=10000.0, partial=0.5, style="interleaved")

    class Rotate(nn.Cell):
        def __init__(self):
            super().__init__()
            self.rotary = RotaryEmbedding(rope)

        def construct(self, positions, q, k):
            cos, sin = self.rotary(positions)
            return apply_rotary(q, cos, sin, True, 64), apply_rotary(k, cos, sin, True, 64)

    ours = Rotate()(ms.Tensor(positions, ms.int32), ms.Tensor(q), ms.Tensor(k))
    for got, want in zip(ours, ref, strict=True):
        assert np.abs(got.asnumpy() - to_np(want.transpose(1, 2))).max() <= 1e-5
    # Half-split application of the same tables would differ: the layout is really exercised.
    assert np.abs(ours[0].asnumpy() - _ours_rotated(_ours(128, None, 10000.0, 0.5), q, k, positions)[0]).max() > 0.1


def test_dynamic_ntk_in_graph_follows_rope_len():
    """Graph mode: dynamic NTK recomputes its frequencies from the rope_len input (no recompile per length)."""
    import mindspore as ms
    import torch
    from mindspore import nn
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from mf_ext.modules import RotaryEmbedding

    set_mode(GRAPH)
    scaling = CASES["dynamic"]
    rope = _ours(64, scaling, max_pos=128)

    class Tables(nn.Cell):
        def __init__(self):
            super().__init__()
            self.rotary = RotaryEmbedding(rope)

        def construct(self, positions, rope_len):
            return self.rotary(positions, rope_len)

    net = Tables()
    positions = np.arange(8, dtype=np.int32) + 300
    for length in (64, 400, 1000):
        cos, _ = net(ms.Tensor(positions), ms.Tensor(length, ms.int32))
        inv, _ = ROPE_INIT_FUNCTIONS["dynamic"](
            _hf_config(64, scaling, max_pos=128), "cpu", seq_len=torch.tensor(length)
        )
        want = np.cos(positions[:, None].astype(np.float32) * inv.numpy()[None])
        assert np.abs(cos.asnumpy()[:, 0, :32] - want).max() <= 2e-4, length
