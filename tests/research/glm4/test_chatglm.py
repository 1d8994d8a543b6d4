"""THUDM's ChatGLM layout as a second source format of the glm4 family, checked against HF's ``GlmForCausalLM``.

The ChatGLM checkpoint is re-packed from a tiny random HF ``GlmForCausalLM`` by ``chatglm_layout.to_chatglm``
(written from THUDM's ``modeling_chatglm.py``, not from our spec). Through the family's converter it must give the
very checkpoint the HF layout gives, HF's logits, and convert back to either layout bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.convert.convert_helpers import read_st_dir
from tests.family_parity import hf_logits, load_family_model, prompt_ids

ms = pytest.importorskip("mindspore")


def _load(path) -> dict[str, np.ndarray]:
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}


def test_chatglm_gives_the_checkpoint_the_hf_layout_gives(tmp_path, plugin, twins):
    _, hf_dir, chatglm_dir = twins
    plugin.convert_pt_to_ms(str(hf_dir), str(tmp_path / "hf.ckpt"), progress=False)
    plugin.convert_pt_to_ms(str(chatglm_dir), str(tmp_path / "chatglm.ckpt"), progress=False)
    a, b = _load(tmp_path / "hf.ckpt"), _load(tmp_path / "chatglm.ckpt")
    assert sorted(a) == sorted(b)
    assert "transformer.encoder.layers.1.self_attention.query_key_value.bias" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_chatglm_checkpoint_matches_hf_logits(tmp_path, monkeypatch, plugin, twins):
    import mf_ext

    monkeypatch.chdir(tmp_path)  # MindFormers writes ./output/log
    model, _, chatglm_dir = twins
    ckpt = tmp_path / "chatglm.ckpt"
    plugin.convert_pt_to_ms(str(chatglm_dir), str(ckpt), progress=False)
    ids = prompt_ids(model.config.vocab_size, seed=1)
    ours = load_family_model(plugin, ckpt, mode=1)  # architecture from the ChatGLM config.json kept beside it
    assert ours.config.theta == 500000.0 and ours.config.n_kv_heads == 2
    diff = np.abs(mf_ext.logits(ours, ids).astype(np.float64) - hf_logits(model, ids)).max()
    assert diff <= 1e-4, diff


def test_chatglm_converts_back_to_either_layout_bit_exactly(tmp_path, plugin, twins):
    _, hf_dir, chatglm_dir = twins
    ckpt = tmp_path / "w.ckpt"
    plugin.convert_pt_to_ms(str(chatglm_dir), str(ckpt), progress=False)
    plugin.convert_ms_to_pt(str(ckpt), str(tmp_path / "as_chatglm"), layout="chatglm", progress=False)
    plugin.convert_ms_to_pt(str(ckpt), str(tmp_path / "as_hf"), progress=False)
    original = read_st_dir(chatglm_dir)
    # the rotary frequency buffer is recomputed by the model, not carried (ChatGLM's __init__ rebuilds it)
    assert original.pop("transformer.rotary_pos_emb.inv_freq")
    assert read_st_dir(tmp_path / "as_chatglm") == original
    assert read_st_dir(tmp_path / "as_hf") == read_st_dir(hf_dir)
    back = json.loads((tmp_path / "as_chatglm" / "config.json").read_text())
    assert back["model_type"] == "chatglm" and back["rope_ratio"] == 50.0 and back["multi_query_group_num"] == 2
    hf_cfg = json.loads((tmp_path / "as_hf" / "config.json").read_text())
    assert hf_cfg["architectures"] == ["GlmForCausalLM"] and hf_cfg["rope_theta"] == 500000.0


def test_chatglm_variants_the_model_does_not_compute_are_refused(tmp_path, plugin, twins):
    from mf_ext.convert.errors import ConversionError

    _, _, chatglm_dir = twins
    cfg = json.loads((chatglm_dir / "config.json").read_text())
    to_mc, _ = plugin.family.hf_mapping()
    for key, value in (("multi_query_attention", False), ("rmsnorm", False), ("add_bias_linear", True)):
        with pytest.raises(ValueError, match=f"config.json: {key}="):
            to_mc({**cfg, key: value})
    with pytest.raises((ConversionError, ValueError), match="apply_residual_connection_post_layernorm"):
        plugin.convert_pt_to_ms(
            str(chatglm_dir),
            str(tmp_path / "x.ckpt"),
            hf_config={**cfg, "apply_residual_connection_post_layernorm": True},
            progress=False,
        )


def test_cli_finds_the_family_from_either_config(tmp_path, twins):
    from mf_ext.convert.cli import main

    _, hf_dir, chatglm_dir = twins
    for name, src in (("hf", hf_dir), ("chatglm", chatglm_dir)):
        assert main(["hf_to_ms", "--input_path", str(src), "--output_path", str(tmp_path / f"{name}.ckpt")]) == 0
    assert main(["ms_to_hf", "--input_path", str(tmp_path / "chatglm.ckpt"), "--output_path", str(tmp_path / "b")]) == 0
    assert (
        main(
            [
                "hf_to_ms",
                "--model",
                "glm-n",
                "--input_path",
                str(chatglm_dir),
                "--output_path",
                str(tmp_path / "n.ckpt"),
            ]
        )
        == 0
    )
    assert read_st_dir(tmp_path / "b") == read_st_dir(hf_dir)
