"""Linear, norms and MLPs against torch / HF transformers modules holding the same random weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import GRAPH, PYNATIVE, set_mode, to_np


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _load(cell, weights: dict[str, np.ndarray]) -> None:
    import mindspore as ms

    params = dict(cell.parameters_and_names())
    assert set(params) == set(weights), (sorted(params), sorted(weights))
    for name, value in weights.items():
        assert tuple(params[name].shape) == value.shape, name
        params[name].set_data(ms.Tensor(value.astype(ms.dtype_to_nptype(params[name].dtype))))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("in_out_layout", [False, True])
def test_linear_matches_torch(bias, in_out_layout):
    import mindspore as ms
    import torch

    from mf_ext.modules import Linear

    set_mode(PYNATIVE)
    ref = torch.nn.Linear(24, 40, bias=bias)
    w = to_np(ref.weight)
    cell = Linear(24, 40, bias=bias, in_out_layout=in_out_layout)
    weights = {"weight": w.T.copy() if in_out_layout else w}
    if bias:
        weights["bias"] = to_np(ref.bias)
    _load(cell, weights)
    x = _x(2, 5, 24)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5


def test_bf16_storage_is_computed_in_fp32():
    """bf16 parameters (CPU has no bf16 MatMul/Gather) computed in fp32 equal fp32 math on the rounded values."""
    import mindspore as ms
    import torch

    from mf_ext.modules import Embedding, Linear

    set_mode(PYNATIVE)
    w = torch.randn(16, 8).bfloat16()
    lin = Linear(8, 16, bias=True, param_dtype=ms.bfloat16, compute_dtype=ms.float32)
    lin.weight.set_data(ms.Tensor(w.float().numpy(), ms.bfloat16))
    lin.bias.set_data(ms.Tensor(np.ones(16, np.float32), ms.bfloat16))
    emb = Embedding(16, 8, param_dtype=ms.bfloat16, compute_dtype=ms.float32)
    emb.embedding_weight.set_data(ms.Tensor(w.float().numpy()[:, :8], ms.bfloat16))
    x = _x(3, 8)
    out = lin(ms.Tensor(x))
    assert out.dtype == ms.float32 and lin.weight.dtype == ms.bfloat16
    np.testing.assert_allclose(out.asnumpy(), x @ w.float().numpy().T + 1.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(emb(ms.Tensor([[3, 5]], ms.int32)).asnumpy()[0], w.float().numpy()[[3, 5], :8])


@pytest.mark.parametrize("mode", [PYNATIVE, GRAPH], ids=["pynative", "graph"])
def test_rms_norm_matches_hf_llama(mode):
    import mindspore as ms
    import torch
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from mf_ext.modules import RMSNorm

    set_mode(mode)
    ref = LlamaRMSNorm(32, eps=1e-5)
    with torch.no_grad():
        ref.weight.add_(torch.randn(32) * 0.2)
    cell = RMSNorm(32, 1e-5)
    _load(cell, {"weight": to_np(ref.weight)})
    x = _x(2, 7, 32) * 3
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5


@pytest.mark.parametrize("mode", [PYNATIVE, GRAPH], ids=["pynative", "graph"])
def test_layer_norm_matches_torch(mode):
    import mindspore as ms
    import torch

    from mf_ext.modules import LayerNorm

    set_mode(mode)
    ref = torch.nn.LayerNorm(48, eps=1e-5)
    with torch.no_grad():
        ref.weight.add_(torch.randn(48) * 0.2)
        ref.bias.add_(torch.randn(48) * 0.2)
    cell = LayerNorm(48, 1e-5)
    _load(cell, {"gamma": to_np(ref.weight), "beta": to_np(ref.bias)})
    x = _x(2, 5, 48) * 4 + 1.5  # mean far from 0: a missing centring would show
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5


@pytest.mark.parametrize("fused", [False, True], ids=["w1_w3", "w_gate_hidden"])
def test_swiglu_matches_hf_llama_mlp(fused):
    """SwiGLU vs HF LlamaMLP; the fused layout is built with MindFormers' own ffn_concat_hf2mg."""
    import mindspore as ms
    import torch
    from mindformers.utils.convert_utils import ffn_concat_hf2mg
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    from mf_ext.modules import SwiGLU

    set_mode(PYNATIVE)
    torch.manual_seed(1)
    ref = LlamaMLP(LlamaConfig(hidden_size=32, intermediate_size=56))
    gate, up, down = (to_np(getattr(ref, n).weight) for n in ("gate_proj", "up_proj", "down_proj"))
    cell = SwiGLU(32, 56, ffn_concat=fused)
    if fused:
        _load(cell, {"w_gate_hidden.weight": ffn_concat_hf2mg(np.concatenate([gate, up]), 56), "w2.weight": down})
    else:
        _load(cell, {"w1.weight": gate, "w3.weight": up, "w2.weight": down})
    x = _x(2, 6, 32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5


def test_swiglu_halves_layout_matches_hf_phi3_mlp():
    """Fused [gate; up] halves (ChatGLM's dense_h_to_4h, Phi3's gate_up_proj) vs HF Phi3MLP."""
    import mindspore as ms
    import torch
    from transformers import Phi3Config
    from transformers.models.phi3.modeling_phi3 import Phi3MLP

    from mf_ext.modules import SwiGLU

    set_mode(PYNATIVE)
    torch.manual_seed(4)
    ref = Phi3MLP(Phi3Config(hidden_size=32, intermediate_size=56))
    cell = SwiGLU(32, 56, ffn_concat=True, fused_layout="halves")
    _load(cell, {"w_gate_hidden.weight": to_np(ref.gate_up_proj.weight), "w2.weight": to_np(ref.down_proj.weight)})
    x = _x(2, 6, 32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5
    with pytest.raises(ValueError, match=r"SwiGLU.fused_layout: expected 'interleaved' or 'halves', got 'pairs'"):
        SwiGLU(32, 56, ffn_concat=True, fused_layout="pairs")


@pytest.mark.parametrize("mode", [PYNATIVE, GRAPH], ids=["pynative", "graph"])
def test_gelu_mlp_matches_hf_gpt2_mlp(mode):
    """GELU MLP vs HF GPT2MLP (Conv1D weights stored (in, out); gelu_new = tanh approximation)."""
    import mindspore as ms
    import torch
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP

    from mf_ext.modules import GeluMLP

    set_mode(mode)
    torch.manual_seed(2)
    ref = GPT2MLP(128, GPT2Config(n_embd=32, activation_function="gelu_new", resid_pdrop=0.0)).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    cell = GeluMLP(32, 128)
    _load(
        cell,
        {
            "c_fc.weight": to_np(ref.c_fc.weight).T.copy(),
            "c_fc.bias": to_np(ref.c_fc.bias),
            "c_proj.weight": to_np(ref.c_proj.weight).T.copy(),
            "c_proj.bias": to_np(ref.c_proj.bias),
        },
    )
    x = _x(2, 5, 32) * 2
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert np.abs(cell(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5
    # The (in, out) storage of MindFormers-style layouts gives the same function.
    stored = GeluMLP(32, 128, in_out_layout=True)
    _load(
        stored,
        {
            k: (v.T.copy() if v.ndim == 2 else v)
            for k, v in dict(cell.parameters_and_names()).items()
            for v in [v.asnumpy()]
        },
    )
    assert np.abs(stored(ms.Tensor(x)).asnumpy() - want).max() <= 1e-5


@pytest.mark.parametrize("name", ["gelu", "gelu_new", "silu", "relu"])
def test_activations_match_torch(name):
    import mindspore as ms
    import torch
    from transformers.activations import ACT2FN

    from mf_ext.modules import activation

    set_mode(PYNATIVE)
    x = _x(1000) * 4
    with torch.no_grad():
        want = ACT2FN[name](torch.from_numpy(x)).numpy()
    assert np.abs(activation(name, ms.Tensor(x)).asnumpy() - want).max() <= 1e-5
    with pytest.raises(ValueError, match=r"activation: 'swish2' is not supported"):
        from mf_ext.modules import SwiGLU

        SwiGLU(8, 16, act="swish2")
