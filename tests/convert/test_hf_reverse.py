"""The reverse output is a real HF checkpoint: ``AutoModelForCausalLM.from_pretrained`` loads it and reproduces
the original model's logits exactly (same weights, same code), for both families, tied/untied, fused/unfused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.convert.convert_helpers import plugin
from tests.hf_fixtures import LLAMA31_ROPE_SCALING, make_hf_llama, make_hf_qwen2


def _logits(path, ids):
    m = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype="auto").eval()
    with torch.no_grad():
        return m(torch.tensor(ids)).logits.float().numpy(), m


@pytest.mark.parametrize(
    "family,tied,qkv_concat,fmt,dtype",
    [
        ("llama", False, True, "ckpt", "float32"),
        ("llama", True, False, "safetensors", "bfloat16"),
        ("qwen2", True, True, "safetensors", "float32"),
        ("qwen2", False, False, "ckpt", "float16"),
    ],
)
def test_reverse_loads_and_reproduces_logits(tmp_path, family, tied, qkv_concat, fmt, dtype):
    if family == "llama":
        src = make_hf_llama(
            tmp_path / "hf",
            tie_word_embeddings=tied,
            rope_scaling=LLAMA31_ROPE_SCALING,
            dtype=dtype,
            max_shard_size="30KB",
        )
    else:
        src = make_hf_qwen2(tmp_path / "hf", tie_word_embeddings=tied, dtype=dtype)
    mid = tmp_path / ("w.ckpt" if fmt == "ckpt" else "w_st")
    plugin(family).convert_pt_to_ms(src, mid, format=fmt, qkv_concat=qkv_concat, progress=False)
    plugin(family).convert_ms_to_pt(mid, tmp_path / "back", progress=False)
    ids = np.random.RandomState(0).randint(0, 256, (2, 12))
    ref, m0 = _logits(src, ids)
    got, m1 = _logits(tmp_path / "back", ids)
    assert m1.config.tie_word_embeddings is tied
    assert m1.dtype == getattr(torch, dtype)
    np.testing.assert_array_equal(got, ref)
    if tied:
        assert m1.lm_head.weight.data_ptr() == m1.model.embed_tokens.weight.data_ptr()


def test_reverse_from_mindformers_yaml_config(tmp_path):
    """No config.json beside the checkpoint: the architecture comes from a MindFormers model YAML."""
    import yaml

    src = make_hf_llama(tmp_path / "hf", num_kv_heads=2, rope_theta=10000.0)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    (tmp_path / "w.ckpt.config.json").unlink()
    with pytest.raises(Exception, match="no config.json beside"):
        plugin("llama").convert_ms_to_pt(tmp_path / "w.ckpt", tmp_path / "x", progress=False)
    mc = {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "n_kv_heads": 2,
        "vocab_size": 256,
        "intermediate_size": 160,
        "rms_norm_eps": 1e-5,
        "theta": 10000.0,
        "seq_length": 1024,
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"model": {"model_config": mc}}))
    plugin("llama").convert_ms_to_pt(
        tmp_path / "w.ckpt", tmp_path / "back", ms_config=tmp_path / "m.yaml", progress=False
    )
    ids = np.arange(10)[None] % 256
    np.testing.assert_array_equal(_logits(tmp_path / "back", ids)[0], _logits(src, ids)[0])


def test_reverse_from_a_yaml_keeps_rope_scaling(tmp_path):
    """The architecture from a MindFormers YAML with Llama 3.1 rope scaling (the YAML's spelling, ``type: llama3``):
    the written config.json keeps it, and the HF model reproduces the original's logits (rope scaling changes the
    low rotary frequencies, so a dropped one shows at every position past the first)."""
    import json

    import yaml

    src = make_hf_llama(tmp_path / "hf", num_kv_heads=2, rope_scaling=LLAMA31_ROPE_SCALING)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    (tmp_path / "w.ckpt.config.json").unlink()
    hf = json.loads((src / "config.json").read_text())
    rope = {"type": "llama3", **{k: v for k, v in LLAMA31_ROPE_SCALING.items() if k != "rope_type"}}
    mc = {
        "type": "Llama3Config", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "n_kv_heads": 2,
        "vocab_size": 256, "intermediate_size": 160, "rms_norm_eps": hf["rms_norm_eps"], "theta": hf["rope_theta"],
        "max_position_embedding": hf["max_position_embeddings"], "seq_length": 128, "rope_scaling": rope,
    }  # fmt: skip
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"model": {"model_config": mc}}))
    plugin("llama").convert_ms_to_pt(
        tmp_path / "w.ckpt", tmp_path / "back", ms_config=tmp_path / "m.yaml", progress=False
    )
    back = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back["rope_scaling"] == hf["rope_scaling"]
    ids = np.arange(40)[None] % 256
    np.testing.assert_array_equal(_logits(tmp_path / "back", ids)[0], _logits(src, ids)[0])
