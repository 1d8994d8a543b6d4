"""Foreign models (MindFormers' built-in LlamaForCausalLM here) through mf_ext.logits / mf_ext.generate on CPU:
padded to the seq_length a static-shape model accepts, logits equal to HF's, the same tokens as mf-ext's own model
for every sampling option, and the RmsNorm primitive some layers hard-wire replaced by its exact definition."""

from __future__ import annotations

import numpy as np
import pytest

from tests.foreign.foreign_helpers import ARCH, REPO, VOCAB

SEQ = 48


@pytest.fixture(scope="module")
def models(tiny, tmp_path_factory):
    """(MindFormers' LlamaForCausalLM, mf-ext's Llama3ForCausalLM, HF model), all with the HF weights."""
    import mindspore as ms
    import torch
    from mindformers import LlamaConfig, LlamaForCausalLM
    from transformers import AutoModelForCausalLM

    import mf_ext
    from mf_ext.registry import load_plugin

    # graph mode: every call has the same static shape (batch, seq_length), compiled once per batch size
    ms.set_context(device_target="CPU", mode=ms.GRAPH_MODE)
    ckpt = tmp_path_factory.mktemp("foreign_models") / "w.ckpt"
    load_plugin(REPO / "research" / "llama3_1").convert_pt_to_ms(str(tiny.hf), str(ckpt), progress=False)
    mc = LlamaConfig(
        batch_size=1,
        seq_length=SEQ,
        **ARCH,
        rms_norm_eps=1e-5,
        theta=10000.0,
        max_position_embedding=1024,
        pad_token_id=VOCAB - 1,
        compute_dtype="float32",
        layernorm_compute_type="float32",
        softmax_compute_type="float32",
        rotary_dtype="float32",
        param_init_type="float32",
        use_past=False,
        is_dynamic=False,
        use_flash_attention=False,
        use_rope_slice=True,
    )
    theirs = LlamaForCausalLM(mc)
    not_loaded, _ = ms.load_param_into_net(theirs, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded
    theirs.set_train(False)
    demo_yaml = REPO / "research" / "llama3_1" / "predict_demo.yaml"
    ours = mf_ext.load_model(demo_yaml, register_path=REPO / "research" / "llama3_1", checkpoint=ckpt, mode=0)
    hf = AutoModelForCausalLM.from_pretrained(tiny.hf, torch_dtype=torch.float32, attn_implementation="eager").eval()
    return theirs, ours, hf


def _hf_logits(hf, ids):
    import torch

    with torch.no_grad():
        return hf(torch.tensor(ids, dtype=torch.long)).logits.numpy()


def test_logits_of_a_static_model_at_any_length_match_hf(models):
    import mf_ext
    from mf_ext.foreign import ForeignModelError

    theirs, _, hf = models
    rng = np.random.default_rng(0)
    for length in (7, SEQ):
        ids = rng.integers(0, VOCAB - 1, size=(2, length))
        out = mf_ext.logits(theirs, ids)
        assert out.shape == (2, length, VOCAB)
        assert np.abs(out - _hf_logits(hf, ids)).max() <= 1e-4
    with pytest.raises(ForeignModelError, match=rf"LlamaForCausalLM takes inputs of exactly seq_length={SEQ}"):
        mf_ext.logits(theirs, rng.integers(0, VOCAB - 1, size=(1, SEQ + 1)))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"do_sample": True, "top_k": 5, "temperature": 0.8, "seed": 3},
        {"do_sample": True, "top_p": 0.9, "seed": 4},
        {"do_sample": True, "top_k": 20, "top_p": 0.8, "temperature": 1.3, "seed": 5},
    ],
    ids=["greedy", "top_k", "top_p", "all"],
)
def test_generate_gives_mf_ext_models_tokens_for_every_sampling_option(models, options):
    import mf_ext

    theirs, ours, hf = models
    prompt = np.array([[5, 17, 42, 99, 7, 250]])
    got = mf_ext.generate(theirs, prompt, 12, **options)
    assert got.shape == (1, 18) and (got[:, :6] == prompt).all()
    np.testing.assert_array_equal(got, mf_ext.generate(ours, prompt, 12, **options))
    if not options:
        import torch

        with torch.no_grad():
            ref = hf.generate(
                torch.tensor(prompt), max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0
            )
        np.testing.assert_array_equal(got, ref.numpy())


def test_generate_eos_and_prompts_of_different_lengths(models):
    import mf_ext

    theirs, ours, _ = models
    prompt = [5, 17, 42, 99]
    free = mf_ext.generate(theirs, np.array([prompt]), 8)[0]
    eos = int(free[len(prompt) + 3])  # the 4th new token: generation stops right after it
    stopped = mf_ext.generate(theirs, np.array([prompt]), 8, eos_token_id=eos)[0]
    first = list(free[len(prompt) :]).index(eos)
    np.testing.assert_array_equal(stopped, free[: len(prompt) + first + 1])
    rows = [[5, 17, 42, 99, 7, 250, 3], [8, 9]]
    both, both_ours = mf_ext.generate(theirs, rows, 6), mf_ext.generate(ours, rows, 6)
    for i, row in enumerate(rows):  # left padding is each model's own pad id; the rest is equal
        alone = mf_ext.generate(theirs, np.array([row]), 6)[0]
        np.testing.assert_array_equal(both[i, -len(alone) :], alone)
        np.testing.assert_array_equal(both_ours[i, -len(alone) :], alone)


def test_rms_norm_composite_is_the_ops_definition():
    import mindspore as ms

    from mf_ext.foreign import rms_norm_composite

    ms.set_context(device_target="CPU", mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 5, 32)) * 3).astype(np.float32)
    gamma = rng.standard_normal(32).astype(np.float32)
    eps = 1e-6
    # RmsNorm's definition (MindSpore's op documentation): rstd = 1/sqrt(mean(x^2) + eps), y = x * rstd * gamma
    x64 = x.astype(np.float64)
    rstd_ref = 1.0 / np.sqrt((x64**2).mean(-1, keepdims=True) + eps)
    y_ref = x64 * rstd_ref * gamma.astype(np.float64)
    y, rstd = rms_norm_composite(eps)(ms.Tensor(x), ms.Tensor(gamma))
    assert y.dtype == ms.float32 and rstd.dtype == ms.float32 and tuple(rstd.shape) == (2, 5, 1)
    np.testing.assert_allclose(y.asnumpy(), y_ref, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(rstd.asnumpy(), rstd_ref, rtol=2e-6)
    # half precision in, computed in float32 as the Ascend kernel does, rounded once on the way out
    for dtype in (ms.float16, ms.bfloat16):
        xh = ms.Tensor(x).astype(dtype)
        xf = xh.astype(ms.float32).asnumpy().astype(np.float64)
        ref = xf / np.sqrt((xf**2).mean(-1, keepdims=True) + eps) * gamma
        yh, _ = rms_norm_composite(eps)(xh, ms.Tensor(gamma).astype(dtype))
        assert yh.dtype == dtype
        expected = ms.Tensor(ref.astype(np.float32)).astype(dtype).astype(ms.float32).asnumpy()
        got = yh.astype(ms.float32).asnumpy()
        gamma_h = ms.Tensor(gamma).astype(dtype).astype(ms.float32).asnumpy()
        # gamma is rounded to the input dtype too: compare with the definition on the rounded gamma
        expected = ms.Tensor((xf / np.sqrt((xf**2).mean(-1, keepdims=True) + eps) * gamma_h).astype(np.float32))
        expected = expected.astype(dtype).astype(ms.float32).asnumpy()
        np.testing.assert_array_equal(got, expected)


def test_fused_rms_norm_cells_run_on_cpu_after_replacement():
    import mindspore as ms
    from mindformers.models.llama.llama_layer import LlamaRMSNorm

    from mf_ext.errors import MfExtError
    from mf_ext.foreign import _explain, adapt_model_for_device

    ms.set_context(device_target="CPU", mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(2)
    weight = rng.standard_normal(16).astype(np.float32)
    x = ms.Tensor(rng.standard_normal((2, 3, 16)).astype(np.float32))
    fused = LlamaRMSNorm(16, 1e-5, fused_kernel=True)  # what internlm2 / telechat2 layers build on any device
    plain = LlamaRMSNorm(16, 1e-5, fused_kernel=False)  # MindFormers' own composite path
    for cell in (fused, plain):
        cell.weight.set_data(ms.Tensor(weight))
    assert not fused.self_define
    with pytest.raises(RuntimeError, match="RmsNorm"):
        fused(x).asnumpy()
    assert adapt_model_for_device(fused) == ["norm"]
    np.testing.assert_allclose(fused(x).asnumpy(), plain(x).asnumpy(), rtol=1e-6, atol=1e-6)
    # a kernel MindSpore lacks on CPU is one line naming the op and the class (as if run without the replacement)
    with pytest.raises(RuntimeError) as raw:
        LlamaRMSNorm(16, 1e-5, fused_kernel=True)(x).asnumpy()
    explained = _explain(LlamaRMSNorm(16, 1e-5), raw.value)
    assert isinstance(explained, MfExtError) and "\n" not in str(explained)
    assert str(explained).startswith("LlamaRMSNorm (mindformers.models.llama.llama_layer) cannot run on CPU: ")
    assert "no CPU kernel for the operator 'RmsNorm'" in str(explained)


def test_cpu_settings_are_applied_to_foreign_models_only(tiny, tmp_path, monkeypatch):
    import os

    import mindspore as ms

    from mf_ext.config import load_config
    from mf_ext.foreign import adapt_config_for_device
    from tests.foreign.foreign_helpers import tinyllama_folder

    ms.set_context(device_target="CPU")
    folder = tinyllama_folder(tmp_path / "root", tiny.tok)
    cfg = load_config(folder / "predict_tinyllama.yaml", folder)
    monkeypatch.setenv("RUN_MODE", "unset")  # restored after the test
    changes = adapt_config_for_device(cfg, verbose=False)
    assert os.environ["RUN_MODE"] == "predict"  # as MindFormers' context sets it for a use_past predict YAML
    assert changes == [
        "use_past True -> False",
        "use_flash_attention True -> False",
        "use_rope_slice False -> True",
    ]
    mc = cfg.model.model_config
    assert (mc.use_past, mc.use_flash_attention, mc.is_dynamic, mc.use_rope_slice) == (False, False, False, True)
    demo = REPO / "research" / "llama3_1" / "predict_demo.yaml"
    ours = load_config(demo, REPO / "research" / "llama3_1")
    monkeypatch.setenv("RUN_MODE", "unset")
    assert adapt_config_for_device(ours, verbose=False) == [] and ours.model.model_config.use_past is True
    assert os.environ["RUN_MODE"] == "unset"  # mf-ext's own models are left alone
