"""Independent references on the MindSpore side: ``mindspore.load_checkpoint`` reads what we write (ckpt and
safetensors), our hf_to_ms equals MindFormers 1.9.0's own ``convert_pt_to_ms`` (+ its qkv-concat converter)
tensor for tensor, and MindFormers' built-in ``LlamaForCausalLM`` fed our checkpoint reproduces HF's logits."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from tests.convert.convert_helpers import plugin, read_st_dir
from tests.hf_fixtures import make_hf_llama, make_hf_qwen2

ms = pytest.importorskip("mindspore")


def _np(p) -> np.ndarray:
    """Parameter -> float32 numpy (bf16 widened exactly)."""
    if p.dtype == ms.bfloat16:
        return ms.ops.cast(p, ms.float32).asnumpy()
    return p.asnumpy()


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    return {
        "fp32": make_hf_llama(base / "fp32", num_heads=4, num_kv_heads=2, max_shard_size="40KB"),
        "bf16": make_hf_llama(base / "bf16", num_heads=8, num_kv_heads=2, dtype="bfloat16", seed=1),
        "tied": make_hf_llama(base / "tied", num_heads=4, num_kv_heads=4, tie_word_embeddings=True, seed=2),
    }


@pytest.mark.parametrize("which", ["fp32", "bf16", "tied"])
def test_equals_mindformers_convert_pt_to_ms(tmp_path, hf_models, which):
    from mindformers.models.llama.convert_weight import convert_pt_to_ms as mf_convert

    src = hf_models[which]
    mf_convert(str(src), str(tmp_path / "mf.ckpt"))
    theirs = ms.load_checkpoint(str(tmp_path / "mf.ckpt"))
    # MindFormers loads the HF model in float32 whatever the checkpoint holds (bf16 input -> fp32 output); we
    # keep the source dtype by default, so ask for its dtype explicitly to compare like with like
    their_dtype = "float32" if all(p.dtype == ms.float32 for p in theirs.values()) else None
    plugin("llama").convert_pt_to_ms(src, tmp_path / "ours.ckpt", their_dtype, progress=False)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "ours_st", their_dtype, format="safetensors", progress=False)
    ours = ms.load_checkpoint(str(tmp_path / "ours.ckpt"))
    ours_st = {}
    for f in sorted((tmp_path / "ours_st").glob("*.safetensors")):
        ours_st.update(ms.load_checkpoint(str(f), format="safetensors"))
    if which == "tied":
        # MindFormers copies the tied lm_head out of the state dict; we leave it to the tie (contract) -- and our
        # reverse accepts MindFormers' file, dropping its lm_head copy after checking it equals the embedding
        assert "lm_head.weight" not in ours
        plugin("llama").convert_ms_to_pt(
            tmp_path / "mf.ckpt", tmp_path / "mf_back", hf_config=src / "config.json", progress=False
        )
        assert read_st_dir(tmp_path / "mf_back") == read_st_dir(src)
        np.testing.assert_array_equal(
            _np(theirs.pop("lm_head.weight")), _np(theirs["model.tok_embeddings.embedding_weight"])
        )
    assert sorted(ours) == sorted(theirs) == sorted(ours_st)
    for name, p in theirs.items():
        assert ours[name].dtype == p.dtype == ours_st[name].dtype, name
        assert tuple(ours[name].shape) == tuple(p.shape), name
        np.testing.assert_array_equal(_np(ours[name]), _np(p), err_msg=name)
        np.testing.assert_array_equal(_np(ours_st[name]), _np(p), err_msg=name)


def test_qkv_concat_equals_mindformers(tmp_path, hf_models):
    from mindformers.models.llama.convert_weight import convert_pt_to_ms as mf_convert
    from mindformers.models.llama.convert_weight import convert_qkv_concat_weight

    src = hf_models["bf16"]
    cfg = json.loads((src / "config.json").read_text())
    mf_convert(str(src), str(tmp_path / "mf.ckpt"))
    model_config = types.SimpleNamespace(
        model_config={
            "num_heads": cfg["num_attention_heads"],
            "n_kv_heads": cfg["num_key_value_heads"],
            "hidden_size": cfg["hidden_size"],
            "intermediate_size": cfg["intermediate_size"],
        }
    )
    theirs = convert_qkv_concat_weight(ms.load_checkpoint(str(tmp_path / "mf.ckpt")), model_config)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "ours.ckpt", qkv_concat=True, progress=False)
    ours = ms.load_checkpoint(str(tmp_path / "ours.ckpt"))
    assert sorted(ours) == sorted(theirs)
    assert any(".w_qkv." in n for n in ours) and any(".w_gate_hidden." in n for n in ours)
    for name in theirs:
        np.testing.assert_array_equal(_np(ours[name]), _np(theirs[name]), err_msg=name)


def _mf_llama(cfg: dict, qkv_concat: bool, seq: int, **extra):
    from mindformers import LlamaConfig, LlamaForCausalLM

    # the settings under which MindFormers' built-in Llama runs on CPU (see the team brief)
    mc = LlamaConfig(
        batch_size=1,
        seq_length=seq,
        hidden_size=cfg["hidden_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"],
        n_kv_heads=cfg["num_key_value_heads"],
        vocab_size=cfg["vocab_size"],
        intermediate_size=cfg["intermediate_size"],
        rms_norm_eps=cfg["rms_norm_eps"],
        theta=cfg["rope_theta"],
        max_position_embedding=cfg["max_position_embeddings"],
        use_past=False,
        use_flash_attention=False,
        fused_rms_norm=False,
        use_rope_slice=True,
        qkv_concat=qkv_concat,
        compute_dtype="float32",
        layernorm_compute_type="float32",
        softmax_compute_type="float32",
        rotary_dtype="float32",
        param_init_type="float32",
        **extra,
    )
    net = LlamaForCausalLM(mc)
    net.set_train(False)
    return net


@pytest.mark.parametrize("qkv_concat", [False, True])
def test_mindformers_llama_logits_match_hf(tmp_path, hf_models, qkv_concat):
    import torch
    from transformers import AutoModelForCausalLM

    ms.set_context(device_target="CPU", mode=ms.GRAPH_MODE)
    src = hf_models["fp32"]
    cfg = json.loads((src / "config.json").read_text())
    seq = 16
    ids = np.random.RandomState(0).randint(0, cfg["vocab_size"], (1, seq))
    hf = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = hf(torch.tensor(ids)).logits.float().numpy()
    net = _mf_llama(cfg, qkv_concat, seq)
    if not qkv_concat:
        plugin("llama").convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
        params = ms.load_checkpoint(str(tmp_path / "w.ckpt"))
    else:
        # MindSpore-named safetensors folder, through the checks MindFormers runs for load_ckpt_format: safetensors
        from mindformers import LlamaForCausalLM
        from mindformers.utils.load_checkpoint_utils import validate_qkv_concat
        from mindformers.utils.safetensors.utils import is_hf_safetensors_dir

        out = tmp_path / "w_st"
        plugin("llama").convert_pt_to_ms(src, out, format="safetensors", qkv_concat=True, progress=False)
        assert is_hf_safetensors_dir(str(src), LlamaForCausalLM)  # sanity: it does recognise HF names
        assert not is_hf_safetensors_dir(str(out), LlamaForCausalLM)  # ours are taken as MindSpore names
        validate_qkv_concat(LlamaForCausalLM, True, str(out))  # raises if the fused keys were not found
        params = {}
        for f in sorted(out.glob("*.safetensors")):
            params.update(ms.load_checkpoint(str(f), format="safetensors"))
    not_loaded, unused = ms.load_param_into_net(net, params, strict_load=True)
    assert not_loaded == [] and unused == []
    out = net(ms.Tensor(ids, ms.int32))
    logits = (out[0] if isinstance(out, tuple) else out).asnumpy().reshape(ref.shape)
    assert np.abs(logits - ref).max() <= 1e-4


@pytest.mark.parametrize(("qkv_concat", "tied"), [(False, False), (True, True)])
def test_qwen2_through_mindformers_llama_matches_hf(tmp_path, qkv_concat, tied):
    """Qwen2 (q/k/v biases, tied or untied embeddings) runs on MindFormers' Llama cells with qkv_has_bias (what
    MindFormers' own qwen2_5 YAMLs run). With qkv_concat the fused bias must be grouped like the weight (MindFormers'
    own convert_qkv_concat_weight concatenates the biases plainly, which this model would split wrongly whenever
    n_kv_heads > 1)."""
    import torch
    from transformers import AutoModelForCausalLM

    ms.set_context(device_target="CPU", mode=ms.GRAPH_MODE)
    src = make_hf_qwen2(tmp_path / "hf", num_heads=4, num_kv_heads=2, tie_word_embeddings=tied)
    with torch.no_grad():  # random init leaves biases at 0: make them matter
        m = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
        for n, p in m.named_parameters():
            if n.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.5)
        m.save_pretrained(src)
    cfg = json.loads((src / "config.json").read_text())
    seq = 12
    ids = np.random.RandomState(0).randint(0, cfg["vocab_size"], (1, seq))
    with torch.no_grad():
        ref = m(torch.tensor(ids)).logits.float().numpy()
    plugin("qwen2").convert_pt_to_ms(src, tmp_path / "w.ckpt", qkv_concat=qkv_concat, progress=False)
    net = _mf_llama(cfg, qkv_concat, seq, qkv_has_bias=True, tie_word_embeddings=tied)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(tmp_path / "w.ckpt")), strict_load=True)
    assert not_loaded == [] and unused == []
    out = net(ms.Tensor(ids, ms.int32))
    logits = (out[0] if isinstance(out, tuple) else out).asnumpy().reshape(ref.shape)
    assert np.abs(logits - ref).max() <= 1e-4
