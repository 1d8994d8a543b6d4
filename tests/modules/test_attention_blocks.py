"""Attention block against HF transformers' attention modules of the families that have each variant (same random
weights, each side with its own rotary tables), masks against HF's mask functions, ALiBi against BLOOM's definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import GRAPH, PYNATIVE, set_mode, to_np

HIDDEN, HEADS = 64, 4


def _causal_mask(batch: int, seq: int):
    import torch

    mask = torch.full((seq, seq), torch.finfo(torch.float32).min).triu(1)
    return mask.expand(batch, 1, seq, seq)


def _hf_attention(module, hf_rotary, x: np.ndarray, mask=None):
    import torch

    bs, seq = x.shape[:2]
    positions = torch.arange(seq).expand(bs, seq)
    hidden = torch.from_numpy(x)
    with torch.no_grad():
        cos, sin = hf_rotary(hidden, positions)
        out, _ = module(hidden, (cos, sin), _causal_mask(bs, seq) if mask is None else mask)
    return out.numpy()


def _ours_attention(attn, rope, x: np.ndarray, window=None, slopes=None):
    import mindspore as ms

    from mf_ext.modules import RotaryEmbedding, attention_bias

    seq = x.shape[1]
    slots = ms.Tensor(np.arange(seq, dtype=np.int32))
    cos, sin = (None, None) if rope is None else RotaryEmbedding(rope)(slots)
    bias = attention_bias(slots, seq, None, window, slopes, attn.n_kv_heads)
    out, _, _ = attn(ms.Tensor(x), cos, sin, bias)
    return out.asnumpy()


def _load(cell, weights: dict) -> None:
    import mindspore as ms

    params = dict(cell.parameters_and_names())
    assert set(params) == set(weights), (sorted(params), sorted(weights))
    for name, value in weights.items():
        assert tuple(params[name].shape) == value.shape, (name, params[name].shape, value.shape)
        params[name].set_data(ms.Tensor(value))


def _randomise(module, scale: float = 0.1) -> None:
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * scale)


def _proj_weights(module, names=("q", "k", "v", "o")) -> dict:
    out = {}
    for n in names:
        lin = getattr(module, f"{n}_proj")
        out[f"w{n}.weight"] = to_np(lin.weight)
        if lin.bias is not None:
            out[f"w{n}.bias"] = to_np(lin.bias)
    return out


@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["mha", "gqa", "mqa"])
def test_llama_attention_with_all_biases(kv_heads):
    """HF LlamaAttention with attention_bias=True: q/k/v and o biases, MHA/GQA/MQA."""
    import torch
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding

    from mf_ext.modules import Attention, RopeConfig

    set_mode(PYNATIVE)
    torch.manual_seed(kv_heads)
    cfg = LlamaConfig(
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=kv_heads,
        attention_bias=True,
        rope_theta=10000.0,
    )
    cfg._attn_implementation = "eager"
    ref = LlamaAttention(cfg, 0).eval()
    _randomise(ref)
    ours = Attention(HIDDEN, HEADS, kv_heads, qkv_bias=True, o_bias=True, rot_dim=16)
    _load(ours, _proj_weights(ref))
    x = np.random.default_rng(0).standard_normal((2, 12, HIDDEN)).astype(np.float32)
    want = _hf_attention(ref, LlamaRotaryEmbedding(cfg), x)
    assert np.abs(_ours_attention(ours, RopeConfig(16, 10000.0), x) - want).max() <= 1e-4


def test_softmax_scale_override():
    import torch
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding

    from mf_ext.modules import Attention, RopeConfig

    set_mode(PYNATIVE)
    cfg = LlamaConfig(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=2, rope_theta=10000.0)
    cfg._attn_implementation = "eager"
    torch.manual_seed(3)
    ref = LlamaAttention(cfg, 0).eval()
    _randomise(ref, 0.2)
    ref.scaling = 0.7
    ours = Attention(HIDDEN, HEADS, 2, rot_dim=16, softmax_scale=0.7)
    _load(ours, _proj_weights(ref))
    x = np.random.default_rng(1).standard_normal((1, 10, HIDDEN)).astype(np.float32)
    want = _hf_attention(ref, LlamaRotaryEmbedding(cfg), x)
    assert np.abs(_ours_attention(ours, RopeConfig(16, 10000.0), x) - want).max() <= 1e-4
    default = Attention(HIDDEN, HEADS, 2, rot_dim=16)
    _load(default, _proj_weights(ref))
    assert np.abs(_ours_attention(default, RopeConfig(16, 10000.0), x) - want).max() > 1e-3


@pytest.mark.parametrize("fused", [False, True], ids=["wq_wk_wv", "w_qkv"])
def test_qwen2_attention_qkv_bias(fused):
    """Qwen2: q/k/v biases, no o bias; fused w_qkv (weight and bias) built with MindFormers' qkv_concat_hf2mg."""
    import torch
    from mindformers.utils.convert_utils import qkv_concat_hf2mg
    from transformers import Qwen2Config
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding

    from mf_ext.modules import Attention, RopeConfig

    set_mode(PYNATIVE)
    cfg = Qwen2Config(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=2, rope_theta=1e6)
    cfg._attn_implementation = "eager"
    torch.manual_seed(5)
    ref = Qwen2Attention(cfg, 0).eval()
    _randomise(ref)
    assert ref.o_proj.bias is None and ref.q_proj.bias is not None
    weights = _proj_weights(ref)
    if fused:
        fuse = {
            "w_qkv." + leaf: qkv_concat_hf2mg(
                np.concatenate([weights.pop(f"w{n}.{leaf}") for n in "qkv"]), HEADS, 2, HIDDEN
            )
            for leaf in ("weight", "bias")
        }
        weights.update(fuse)
    ours = Attention(HIDDEN, HEADS, 2, qkv_bias=True, qkv_concat=fused, rot_dim=16)
    _load(ours, weights)
    x = np.random.default_rng(2).standard_normal((2, 9, HIDDEN)).astype(np.float32)
    want = _hf_attention(ref, Qwen2RotaryEmbedding(cfg), x)
    assert np.abs(_ours_attention(ours, RopeConfig(16, 1e6), x) - want).max() <= 1e-4


@pytest.mark.parametrize("mode", [PYNATIVE, GRAPH], ids=["pynative", "graph"])
def test_qwen3_attention_qk_norm_explicit_head_dim(mode):
    """Qwen3: per-head q/k RMSNorm before rotary, head_dim 32 with hidden 64 (q width 128 != hidden)."""
    import torch
    from transformers import Qwen3Config
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention, Qwen3RotaryEmbedding

    from mf_ext.modules import Attention, RopeConfig

    set_mode(mode)
    cfg = Qwen3Config(
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=2,
        head_dim=32,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(7)
    ref = Qwen3Attention(cfg, 0).eval()
    _randomise(ref)
    with torch.no_grad():
        ref.q_norm.weight.add_(1.0)
        ref.k_norm.weight.add_(1.0)
    weights = _proj_weights(ref)
    weights.update({"q_norm.weight": to_np(ref.q_norm.weight), "k_norm.weight": to_np(ref.k_norm.weight)})
    ours = Attention(HIDDEN, HEADS, 2, head_dim=32, qk_norm=True, qk_norm_eps=1e-6, rot_dim=32)
    _load(ours, weights)
    x = np.random.default_rng(3).standard_normal((2, 11, HIDDEN)).astype(np.float32) * 2
    want = _hf_attention(ref, Qwen3RotaryEmbedding(cfg), x)
    assert np.abs(_ours_attention(ours, RopeConfig(32, 1e6), x) - want).max() <= 1e-4


@pytest.mark.parametrize("window", [1, 3, 8])
def test_sliding_window_bias_matches_hf_mask_function(window):
    """attention_bias(window) hides exactly what HF's sliding_window_causal_mask_function hides, with a cache offset
    and left padding."""
    import mindspore as ms
    import torch
    from transformers.masking_utils import and_masks, padding_mask_function, sliding_window_causal_mask_function

    from mf_ext.modules import attention_bias

    set_mode(PYNATIVE)
    kv_len, seq, start = 20, 6, 9
    pad = torch.ones(2, kv_len, dtype=torch.bool)
    pad[1, :4] = False
    hf = and_masks(sliding_window_causal_mask_function(window), padding_mask_function(pad))
    t = torch.tensor
    want = np.array(
        [[[bool(hf(t(b), t(0), t(start + i), t(j))) for j in range(kv_len)] for i in range(seq)] for b in range(2)]
    )
    q_slot = ms.Tensor(np.arange(seq, dtype=np.int32) + start)
    bias = attention_bias(q_slot, kv_len, ms.Tensor(pad.numpy().astype(np.int32)), window).asnumpy()
    np.testing.assert_array_equal(bias.reshape(2, seq, kv_len) == 0, want)
    assert (bias[bias != 0] == np.finfo(np.float32).min).all()


@pytest.mark.parametrize("heads", [8, 12, 40])
def test_alibi_slopes_match_bloom(heads):
    """Slopes of ALiBi (Baichuan2-13B has 40 heads: not a power of two) equal HF BLOOM's build_alibi_tensor."""
    import torch
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    from mf_ext.modules import alibi_slopes

    alibi = build_alibi_tensor(torch.ones(1, 2), heads, torch.float32)  # (heads, 1, 2): slope * [0, 1]
    np.testing.assert_allclose(alibi_slopes(heads), alibi[:, 0, 1].numpy(), rtol=1e-6)


@pytest.mark.parametrize("kv_heads", [8, 2], ids=["mha", "gqa"])
def test_alibi_attention_matches_numpy_formula(kv_heads):
    """Attention with the ALiBi bias == softmax(q k^T / sqrt(d) + slope_h * key_position + causal) v, written out in
    numpy from the BLOOM/Baichuan2 definition (bias grows with the key position; softmax drops the per-row shift)."""
    import mindspore as ms

    from mf_ext.modules import Attention, alibi_slopes

    set_mode(PYNATIVE)
    heads, head_dim, seq = 8, 8, 14
    rng = np.random.default_rng(9)
    attn = Attention(HIDDEN, heads, kv_heads, head_dim=head_dim)
    weights = {n: rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3 for n, p in attn.parameters_and_names()}
    _load(attn, weights)
    x = rng.standard_normal((1, seq, HIDDEN)).astype(np.float32)
    slopes = alibi_slopes(heads)
    got = _ours_attention(attn, None, x, slopes=ms.Tensor(slopes))

    q = (x @ weights["wq.weight"].T).reshape(seq, heads, head_dim)
    k = (x @ weights["wk.weight"].T).reshape(seq, kv_heads, head_dim)
    v = (x @ weights["wv.weight"].T).reshape(seq, kv_heads, head_dim)
    out = np.zeros((seq, heads, head_dim), np.float64)
    for h in range(heads):
        g = h // (heads // kv_heads)
        scores = q[:, h] @ k[:, g].T / np.sqrt(head_dim) + slopes[h] * np.arange(seq)[None, :]
        scores = np.where(np.tril(np.ones((seq, seq), bool)), scores, -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, h] = (probs / probs.sum(-1, keepdims=True)) @ v[:, g]
    want = out.reshape(seq, heads * head_dim) @ weights["wo.weight"].T
    assert np.abs(got[0] - want).max() <= 1e-4
    # Without the bias the output differs: the slopes matter at this length.
    assert np.abs(_ours_attention(attn, None, x)[0] - want).max() > 1e-3
