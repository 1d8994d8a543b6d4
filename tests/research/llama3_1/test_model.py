"""Llama3ForCausalLM against independent references: HF transformers and MindFormers' built-in LlamaForCausalLM.

Every model here starts as a tiny random HF ``LlamaForCausalLM`` saved with ``save_pretrained``, goes through the
plug-in's ``convert_weight.py`` (the ``--convert`` path) and is loaded strictly into ours. Full matrix of
architectures for logits in PyNative on short sequences; graph mode, 512-token sequences, generation and
MindFormers parity on targeted cases so the file stays around two minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.hf_fixtures import LLAMA31_ROPE_SCALING, make_hf_llama, read_hf_config

REPO = Path(__file__).resolve().parents[3]
PLUGIN_DIR = REPO / "research" / "llama3_1"
HEADS = 8  # hidden 64 -> head_dim 8; kv heads 8 (MHA), 2 (heads/4), 1 (MQA)
GRAPH, PYNATIVE = 0, 1


@pytest.fixture(scope="module")
def plugin():
    from mf_ext.registry import load_plugin

    return load_plugin(str(PLUGIN_DIR))


@pytest.fixture(scope="module")
def mods(plugin):
    return plugin.import_module("llama3_1_config"), plugin.import_module("llama3_1_model")


@pytest.fixture(scope="module")
def hf_factory(tmp_path_factory, plugin):
    """``get(kv, tied, rope, dtype="float32", qkv_concat=False) -> (hf_dir, ckpt)``, each variant built once."""
    made: dict = {}

    def get(kv_heads: int, tied: bool, rope: bool, dtype: str = "float32", qkv_concat: bool = False):
        key = (kv_heads, tied, rope, dtype, qkv_concat)
        if key not in made:
            base = tmp_path_factory.mktemp(f"hf_kv{kv_heads}_t{int(tied)}_r{int(rope)}_{dtype}_q{int(qkv_concat)}")
            hf_dir = make_hf_llama(
                base / "hf",
                num_heads=HEADS,
                num_kv_heads=kv_heads,
                tie_word_embeddings=tied,
                rope_scaling=LLAMA31_ROPE_SCALING if rope else None,
                dtype=dtype,
                seed=kv_heads + 10 * tied + 100 * rope,
            )
            ckpt = base / "model.ckpt"
            plugin.convert_pt_to_ms(str(hf_dir), str(ckpt), qkv_concat=qkv_concat, progress=False)
            made[key] = (hf_dir, ckpt)
        return made[key]

    return get


def _set_mode(mode: int) -> None:
    import mindspore as ms

    ms.set_context(device_target="CPU", mode=mode)


def _ours(mods, hf_dir: Path, ckpt: Path, **overrides):
    import mindspore as ms

    cfg_mod, model_mod = mods
    cfg = cfg_mod.Llama3Config.from_hf_config(read_hf_config(hf_dir), **overrides)
    model = model_mod.Llama3ForCausalLM(cfg)
    not_loaded, unexpected = ms.load_param_into_net(model, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unexpected, (not_loaded, unexpected)
    model.set_train(False)
    return model


_SHARED: dict = {}


def _shared(mods, hf_dir: Path, ckpt: Path, mode: int):
    """One inference model per (checkpoint, mode) for the generation tests: graph mode compiles once per instance
    and input shape, so tests with the same prompt shapes reuse the prefill and decode graphs."""
    key = (str(ckpt), mode)
    if key not in _SHARED:
        _SHARED[key] = _ours(mods, hf_dir, ckpt)
    return _SHARED[key]


def _hf(hf_dir: Path):
    import torch
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()


def _hf_logits(hf_model, ids: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return hf_model(torch.from_numpy(ids)).logits.float().numpy()


def _ids(batch: int, seq: int, seed: int = 0, vocab: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, vocab, (batch, seq)).astype(np.int64)


# --- logits vs HF -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rope", [False, True], ids=["rope_none", "rope_llama3"])
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("kv_heads", [HEADS, HEADS // 4, 1], ids=["mha", "gqa", "mqa"])
def test_logits_match_hf_pynative(mods, hf_factory, kv_heads, tied, rope):
    from mf_ext.generation import logits

    _set_mode(PYNATIVE)
    hf_dir, ckpt = hf_factory(kv_heads, tied, rope)
    ids = _ids(2, 24, seed=kv_heads)
    ours = logits(_ours(mods, hf_dir, ckpt), ids)
    ref = _hf_logits(_hf(hf_dir), ids)
    assert ours.shape == ref.shape == (2, 24, 256)
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize(
    ("mode", "kv_heads", "tied", "rope"),
    [(GRAPH, 2, False, True), (GRAPH, 1, True, False), (PYNATIVE, 8, False, True)],
    ids=["graph-gqa-llama3", "graph-mqa-tied", "pynative-mha-llama3"],
)
def test_logits_match_hf_seq512(mods, hf_factory, mode, kv_heads, tied, rope):
    """512 tokens: far past original_max_position_embeddings (64), so rope_scaling's low/medium bands matter."""
    from mf_ext.generation import logits

    _set_mode(mode)
    hf_dir, ckpt = hf_factory(kv_heads, tied, rope)
    ids = _ids(1, 512, seed=5)
    diff = np.abs(logits(_ours(mods, hf_dir, ckpt), ids) - _hf_logits(_hf(hf_dir), ids)).max()
    assert diff <= 1e-4


def test_rope_scaling_changes_logits(mods, hf_factory):
    """The parity tolerance can see rope_scaling: dropping it moves logits >10x past the 1e-4 tolerance."""
    from mf_ext.generation import logits

    _set_mode(PYNATIVE)
    hf_dir, ckpt = hf_factory(2, False, True)
    ids = _ids(1, 200, seed=3)
    ref = _hf_logits(_hf(hf_dir), ids)
    assert np.abs(logits(_ours(mods, hf_dir, ckpt), ids) - ref).max() <= 1e-4
    assert np.abs(logits(_ours(mods, hf_dir, ckpt, rope_scaling=None), ids) - ref).max() > 1e-3


def test_llama3_smoothing_band_head_dim_64(mods, plugin, tmp_path):
    """head_dim 64: three frequencies fall in llama3's smoothed band (wavelengths 16..64 for an original context of
    64), so a model test sees the smoothing; dropping it (a planted bug) moves logits far past the tolerance."""
    import mindspore as ms

    from mf_ext.generation import logits

    _set_mode(PYNATIVE)
    hf_dir = make_hf_llama(
        tmp_path / "hf", hidden_size=128, num_heads=2, num_kv_heads=1, rope_scaling=LLAMA31_ROPE_SCALING, seed=64
    )
    ckpt = tmp_path / "model.ckpt"
    plugin.convert_pt_to_ms(str(hf_dir), str(ckpt), progress=False)
    model = _ours(mods, hf_dir, ckpt)
    assert model.config.head_dim == 64
    inv_freq = model.model.rotary.inv_freq.asnumpy()[0]
    plain = mods[1].rope_inv_freq(64, model.config.theta, None)
    wavelen = 2 * np.pi / plain
    medium = (wavelen >= 64 / 4.0) & (wavelen <= 64 / 1.0)
    assert medium.sum() == 3
    ids = _ids(1, 200, seed=64)
    ref = _hf_logits(_hf(hf_dir), ids)
    assert np.abs(logits(model, ids) - ref).max() <= 1e-4
    # Planted bug: llama3 scaling without the smoothing (medium band left unscaled).
    unsmoothed = np.where(wavelen > 64, plain / 8.0, plain).astype(np.float32)
    assert not np.allclose(unsmoothed[medium], inv_freq[medium])
    model.model.rotary.inv_freq = ms.Tensor(unsmoothed.reshape(1, -1))
    assert np.abs(logits(model, ids) - ref).max() > 1e-3


# --- KV cache and generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [GRAPH, PYNATIVE], ids=["graph", "pynative"])
def test_kv_cache_logits_equal_full_recompute(mods, hf_factory, mode):
    import mindspore as ms

    _set_mode(mode)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _ours(mods, hf_dir, ckpt)
    ids = _ids(2, 40, seed=7)
    full = model(ms.Tensor(ids.astype(np.int32))).asnumpy()
    prompt = 30 if mode == GRAPH else 36
    cache = model.init_kv_cache(2, 64)
    out, cache = model(**model.prepare_inputs_for_generation(ids[:, :prompt], past_key_values=cache))
    assert np.abs(out.asnumpy() - full[:, :prompt]).max() <= 1e-5
    for pos in range(prompt, 40):
        inputs = model.prepare_inputs_for_generation(ids[:, : pos + 1], past_key_values=cache, cache_position=pos)
        out, cache = model(**inputs)
        assert out.shape == (2, 1, 256)
        assert np.abs(out.asnumpy()[:, 0] - full[:, pos]).max() <= 1e-5, pos


@pytest.mark.parametrize(
    ("mode", "use_cache", "new_tokens"),
    [(GRAPH, True, 32), (GRAPH, False, 32), (PYNATIVE, True, 16), (PYNATIVE, False, 10)],
    ids=["graph-cache", "graph-nocache", "pynative-cache", "pynative-nocache"],
)
def test_greedy_generation_matches_hf(mods, hf_factory, mode, use_cache, new_tokens):
    import torch

    from mf_ext.generation import generate

    _set_mode(mode)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, mode)
    prompt = _ids(2, 9, seed=11)
    ours = generate(model, prompt, max_new_tokens=new_tokens, use_cache=use_cache, eos_token_id=2)
    with torch.no_grad():
        ref = (
            _hf(hf_dir)
            .generate(
                torch.from_numpy(prompt),
                attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=2,
                pad_token_id=0,
            )
            .numpy()
        )
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize(
    ("mode", "use_cache"),
    [(GRAPH, True), (GRAPH, False), (PYNATIVE, True)],
    ids=["graph-cache", "graph-nocache", "pynative-cache"],
)
def test_left_padded_batch_matches_hf(mods, hf_factory, mode, use_cache):
    """Prompts of different lengths in one batch: left padding + attention_mask, as HF generate does it."""
    import torch

    from mf_ext.generation import generate

    _set_mode(mode)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, mode)
    rows = [list(_ids(1, n, seed=20 + n)[0]) for n in (9, 4, 7)]
    ours = generate(model, rows, max_new_tokens=12, use_cache=use_cache)
    width = max(map(len, rows))
    ids = np.array([[0] * (width - len(r)) + r for r in rows])
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        ref = (
            _hf(hf_dir)
            .generate(
                torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
            .numpy()
        )
    np.testing.assert_array_equal(ours, ref)
    # Each row equals that prompt generated alone (padding changes nothing).
    alone = generate(model, np.array([rows[1]]), max_new_tokens=12, use_cache=use_cache)
    np.testing.assert_array_equal(ours[1, width - 4 :], alone[0])


def test_mindformers_generate_interface(mods, hf_factory):
    """model.generate() in MindFormers' calling convention (right-padded lists in, per-prompt arrays out)."""
    from mf_ext.generation import generate

    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    rows = [list(_ids(1, n, seed=20 + n)[0]) for n in (9, 4, 7)]
    ref = generate(model, rows, max_new_tokens=6)
    padded = [r + [0] * (9 - len(r)) for r in rows]  # MindFormers' right padding with pad_token_id 0
    out = model.generate(padded, max_new_tokens=6, do_sample=False)
    for row, prompt, got in zip(ref, rows, out, strict=True):
        np.testing.assert_array_equal(got, np.r_[prompt, row[-6:]])
    eos = int(ref[1, -4])
    stopped = model.generate([rows[1]], max_new_tokens=6, eos_token_id=eos)[0]
    assert stopped[-1] == eos and len(stopped) <= 4 + 6


def test_sampling_controls(mods, hf_factory):
    from mf_ext.generation import generate, sample_next

    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    prompt = _ids(2, 9, seed=2)
    greedy = generate(model, prompt, 8)
    assert np.array_equal(generate(model, prompt, 8, do_sample=True, top_k=1, seed=3), greedy)
    assert np.array_equal(generate(model, prompt, 8, do_sample=True, top_p=1e-6, seed=4), greedy)
    a = generate(model, prompt, 8, do_sample=True, temperature=5.0, seed=5)
    assert np.array_equal(a, generate(model, prompt, 8, do_sample=True, temperature=5.0, seed=5))
    assert not np.array_equal(a, greedy)  # at temperature 5 over 256 tokens, 8 greedy picks in a row are ~impossible
    # top-k / top-p only ever draw from their sets (numpy reference on fixed logits).
    rng = np.random.default_rng(0)
    row = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], dtype=np.float32))
    assert {int(sample_next(row, True, top_k=2, rng=rng)[0]) for _ in range(200)} == {0, 1}
    assert {int(sample_next(row, True, top_p=0.7, rng=rng)[0]) for _ in range(200)} == {0, 1}
    assert {int(sample_next(row, True, top_p=0.9, rng=rng)[0]) for _ in range(300)} == {0, 1, 2}


def test_generation_stops_at_eos_and_pads(mods, hf_factory):
    from mf_ext.generation import generate

    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    prompt = _ids(2, 9, seed=8)
    free = generate(model, prompt, 10)
    eos = int(free[0, 11])  # make row 0's third new token the eos
    out = generate(model, prompt, 10, eos_token_id=eos)
    first = [int(np.argmax(row == eos)) if (row == eos).any() else None for row in free[:, 9:]]
    kept = [10 if f is None else f + 1 for f in first]  # new tokens up to and including the first eos
    # Stops once every row has emitted eos (else at the budget); finished rows are padded.
    assert out.shape[1] == 9 + (max(kept) if None not in first else 10)
    for row, n in enumerate(kept):
        np.testing.assert_array_equal(out[row, : 9 + n], free[row, : 9 + n])
        assert (out[row, 9 + n :] == model.config.pad_token_id).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"max_new_tokens": 2, "top_p": 0.0}, "top_p"),
        ({"max_new_tokens": 2, "top_k": -3}, "top_k"),
        ({"max_new_tokens": 2, "do_sample": True, "temperature": 0.0}, "temperature"),
        ({"max_new_tokens": 2, "eos_token_id": "2"}, "eos_token_id"),
        ({"max_new_tokens": 2, "attention_mask": np.array([[1, 1, 1, 0]])}, "padding must be on the left"),
        ({"max_new_tokens": 2, "attention_mask": np.array([[1, 1]])}, "attention_mask: expected 0/1 values"),
    ],
)
def test_generate_rejects_bad_arguments(mods, hf_factory, kwargs, match):
    from mf_ext.generation import generate

    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    with pytest.raises(ValueError, match=match):
        generate(model, _ids(1, 4), **kwargs)


def test_bad_input_ids_rejected(mods, hf_factory):
    from mf_ext.generation import generate, logits

    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    with pytest.raises(ValueError, match=r"input_ids: token ids must be in \[0, 256\)"):
        logits(model, np.array([[1, 2, 999]]))
    with pytest.raises(ValueError, match="input_ids: expected integer"):
        generate(model, np.array([[1.5, 2.0]]), 2)


# --- fused qkv, dtypes, training ------------------------------------------------------------------------------


def test_qkv_concat_matches_hf_and_mindformers_layout(mods, hf_factory):
    """Converter's fused w_qkv / w_gate_hidden checkpoint, in MindFormers' layout, gives HF's logits in ours."""
    import mindspore as ms
    from mindformers.utils.convert_utils import ffn_concat_hf2mg, qkv_concat_hf2mg

    from mf_ext.generation import logits

    _set_mode(PYNATIVE)
    hf_dir, ckpt = hf_factory(2, False, True, qkv_concat=True)
    model = _ours(mods, hf_dir, ckpt, qkv_concat=True)
    ids = _ids(2, 20, seed=4)
    assert np.abs(logits(model, ids) - _hf_logits(_hf(hf_dir), ids)).max() <= 1e-4
    # Independent layout check: MindFormers' own hf->mg fusion of HF's q/k/v and gate/up equals what we load.
    from safetensors.numpy import load_file

    hf = load_file(str(hf_dir / "model.safetensors"))
    params = {p.name: p.asnumpy() for p in model.get_parameters()}
    qkv = np.concatenate([hf[f"model.layers.1.self_attn.{n}_proj.weight"] for n in "qkv"], 0)
    np.testing.assert_array_equal(params["model.layers.1.attention.w_qkv.weight"], qkv_concat_hf2mg(qkv, HEADS, 2, 64))
    gate_up = np.concatenate([hf[f"model.layers.1.mlp.{n}_proj.weight"] for n in ("gate", "up")], 0)
    np.testing.assert_array_equal(
        params["model.layers.1.feed_forward.w_gate_hidden.weight"], ffn_concat_hf2mg(gate_up, 160)
    )
    assert ms.load_checkpoint(str(ckpt)).keys() == params.keys()


def test_bf16_params_fp32_compute_match_rounded_hf(mods, hf_factory):
    """bf16 weights (CPU has no bf16 MatMul/Gather: computed in fp32) equal HF fp32 run on the same bf16 values."""
    _set_mode(PYNATIVE)
    from mf_ext.generation import logits

    hf_dir, ckpt = hf_factory(2, True, True, dtype="bfloat16")
    model = _ours(mods, hf_dir, ckpt, param_init_type="bfloat16", compute_dtype="float32")
    assert {str(p.dtype) for p in model.get_parameters()} == {"BFloat16"}
    ids = _ids(1, 20, seed=9)
    assert np.abs(logits(model, ids) - _hf_logits(_hf(hf_dir), ids)).max() <= 1e-4


@pytest.mark.parametrize("mode", [GRAPH, PYNATIVE], ids=["graph", "pynative"])
def test_fp16_compute_close_to_fp32(mods, plugin, hf_factory, tmp_path, mode):
    """fp16 weights (converter's dtype option) and matmuls, softmax/norms in fp32, fp16 KV cache: close to fp32."""
    from mf_ext.generation import generate, logits

    _set_mode(mode)
    hf_dir, _ = hf_factory(2, False, True)
    ckpt = tmp_path / "fp16.ckpt"
    plugin.convert_pt_to_ms(str(hf_dir), str(ckpt), dtype="float16", progress=False)
    model = _ours(mods, hf_dir, ckpt, param_init_type="float16", compute_dtype="float16")
    ids = _ids(2, 24, seed=6)
    ref = _hf_logits(_hf(hf_dir), ids)
    ours = logits(model, ids)
    assert np.abs(ours - ref).max() <= 2e-2 * np.abs(ref).max()
    assert generate(model, ids[:, :8], 4).shape == (2, 12)


def test_predict_layout_inputs_run(mods, hf_factory):
    """prepare_inputs_for_predict_layout gives construct's positional inputs (MindFormers compiles with them)."""
    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(2, False, True)
    model = _shared(mods, hf_dir, ckpt, GRAPH)
    inputs = model.prepare_inputs_for_predict_layout(_ids(2, 9, seed=2))
    assert model(*inputs).shape == (2, 9, 256)


@pytest.mark.parametrize("mode", [GRAPH, PYNATIVE], ids=["graph", "pynative"])
def test_loss_and_gradients_match_hf(mods, hf_factory, mode):
    """Labels -> MindFormers-shifted loss with -100 ignored == HF loss; gradients equal torch's autograd."""
    import mindspore as ms
    import torch

    _set_mode(mode)
    hf_dir, ckpt = hf_factory(2, True, True)
    model = _ours(mods, hf_dir, ckpt)
    model.set_train(True)
    ids = _ids(2, 16, seed=12)
    labels = ids.copy()
    labels[:, :5] = -100
    labels[1, 10:] = -100
    names = ["model.layers.0.attention.wk.weight", "model.tok_embeddings.embedding_weight", "model.norm_out.weight"]
    weights = [p for p in model.trainable_params() if p.name in names]
    grad_fn = ms.value_and_grad(model, None, weights)
    loss, grads = grad_fn(ms.Tensor(ids.astype(np.int32)), ms.Tensor(labels.astype(np.int32)))
    hf = _hf(hf_dir)
    ref = hf(torch.from_numpy(ids), labels=torch.from_numpy(labels)).loss
    ref.backward()
    assert abs(float(loss.asnumpy()) - ref.item()) <= 1e-5
    hf_grads = {
        "model.layers.0.attention.wk.weight": hf.model.layers[0].self_attn.k_proj.weight.grad,
        "model.tok_embeddings.embedding_weight": hf.model.embed_tokens.weight.grad,
        "model.norm_out.weight": hf.model.norm.weight.grad,
    }
    for p, g in zip(weights, grads, strict=True):
        np.testing.assert_allclose(g.asnumpy(), hf_grads[p.name].numpy(), atol=1e-5, rtol=1e-4, err_msg=p.name)


# --- MindFormers' built-in Llama on the same checkpoint --------------------------------------------------------


@pytest.mark.parametrize(
    ("kv_heads", "tied", "rope"), [(2, False, True), (HEADS, True, False)], ids=["gqa-untied-llama3", "mha-tied-none"]
)
def test_same_checkpoint_in_mindformers_llama(mods, hf_factory, kv_heads, tied, rope):
    import mindspore as ms
    from mindformers.models.llama import LlamaConfig, LlamaForCausalLM

    from mf_ext.generation import logits

    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(kv_heads, tied, rope)
    seq = 32
    ours = _ours(mods, hf_dir, ckpt, seq_length=seq)
    mf = LlamaForCausalLM(LlamaConfig(**ours.config.to_mindformers_llama_kwargs()))
    not_loaded, unexpected = ms.load_param_into_net(mf, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unexpected, (not_loaded, unexpected)
    mf.set_train(False)
    ids = _ids(2, seq, seed=13)
    assert np.abs(logits(mf, ids) - logits(ours, ids)).max() <= 1e-4


# --- config and builders ---------------------------------------------------------------------------------------


def test_config_from_and_to_hf_llama31_8b(mods):
    from transformers import LlamaConfig as HFLlamaConfig

    cfg_mod, _ = mods
    hf = HFLlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        bos_token_id=128000,
        eos_token_id=[128001, 128008, 128009],
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    ).to_dict()
    cfg = cfg_mod.Llama3Config.from_hf_config(hf)
    assert (cfg.num_layers, cfg.num_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_hidden_size) == (32, 32, 8, 128, 14336)
    assert cfg.theta == 500000.0 and cfg.rope_scaling["type"] == "llama3"
    assert cfg.max_position_embedding == 131072 and cfg.eos_token_id == [128001, 128008, 128009]
    back = HFLlamaConfig(**cfg.to_hf_config())
    for key in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "rope_theta",
        "rms_norm_eps",
        "rope_scaling",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "head_dim",
    ):
        assert getattr(back, key) == hf[key], key
    # The reverse converter relies on this round trip for tiny models too.
    assert cfg_mod.Llama3Config.from_hf_config(cfg.to_hf_config()).to_hf_config() == cfg.to_hf_config()
    # MindFormers serialises configs with to_dict() and rebuilds them from it (trainer, save/load).
    assert cfg_mod.Llama3Config(**cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, r"rope_scaling.rope_type: 'yarn' is not supported"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, r"rope_type 'llama3' needs keys"),
        ({"hidden_act": "gelu"}, r"hidden_act 'gelu' is not supported"),
        ({"attention_bias": True}, r"attention_bias=true is not supported"),
        ({"model_type": "qwen2"}, r"model_type 'qwen2' is not a Llama model"),
        ({"num_key_value_heads": 3}, r"n_kv_heads: expected a positive divisor of num_heads=8, got 3"),
    ],
)
def test_config_rejects_unsupported_hf_fields(mods, tmp_path, change, match):
    cfg_mod, _ = mods
    hf = read_hf_config(make_hf_llama(tmp_path / "hf", num_heads=8, num_kv_heads=2))
    hf.update(change)
    with pytest.raises(ValueError, match=match):
        cfg_mod.Llama3Config.from_hf_config(hf)


def test_builds_through_mindformers_builders(hf_factory, tmp_path):
    """YAML with auto_register -> registry -> MindFormers' build_model_config / build_model -> our classes."""
    import yaml
    from mindformers.models import build_model, build_model_config
    from mindformers.tools.register import MindFormerConfig

    from mf_ext.generation import logits
    from mf_ext.registry import resolve_auto_register

    _set_mode(GRAPH)
    hf_dir, ckpt = hf_factory(2, False, True)
    cfg = yaml.safe_load((PLUGIN_DIR / "predict.yaml").read_text())
    arch = {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": HEADS,
        "n_kv_heads": 2,
        "intermediate_size": 160,
        "vocab_size": 256,
        "rope_scaling": dict(LLAMA31_ROPE_SCALING, type="llama3"),
        "max_position_embedding": 1024,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "bos_token_id": 1,
    }
    cfg["model"]["model_config"].update(arch, seq_length=64)
    cfg, registered = resolve_auto_register(cfg, str(PLUGIN_DIR))
    assert {r.cls.__name__ for r in registered} >= {"Llama3Config", "Llama3ForCausalLM"}
    model_cfg = build_model_config(MindFormerConfig(**cfg["model"]["model_config"]))
    assert type(model_cfg).__name__ == "Llama3Config" and model_cfg.n_kv_heads == 2
    model = build_model(MindFormerConfig(**cfg["model"]))
    assert type(model).__name__ == "Llama3ForCausalLM"
    import mindspore as ms

    ms.load_param_into_net(model, ms.load_checkpoint(str(ckpt)), strict_load=True)
    model.set_train(False)
    ids = _ids(1, 16, seed=1)
    assert np.abs(logits(model, ids) - _hf_logits(_hf(hf_dir), ids)).max() <= 1e-4
    assert json.loads((Path(str(ckpt) + ".config.json")).read_text())["num_key_value_heads"] == 2


def test_mindformers_text_generation_pipeline_on_cpu():
    """MindFormers' own pipeline("text_generation") runs our model on CPU (its generate() would not)."""
    from mindformers import pipeline

    import mf_ext

    demo_yaml = PLUGIN_DIR / "predict_demo.yaml"
    model = mf_ext.load_model(config=str(demo_yaml), register_path=str(PLUGIN_DIR))
    tok = mf_ext.load_tokenizer(config=str(demo_yaml), register_path=str(PLUGIN_DIR))
    prompt = "On a small island at the edge of a cold grey sea"
    text = pipeline("text_generation", model=model, tokenizer=tok, max_new_tokens=12)(prompt)[0]
    ids = tok(prompt)["input_ids"]
    expected = tok.decode(
        list(mf_ext.generate(model, [ids], 12, eos_token_id=model.config.eos_token_id)[0]), skip_special_tokens=True
    )
    assert text["text_generation_text"] == [expected]
    assert len(expected) > len(prompt)
