"""``mf_ext.load_model(config=predict.yaml, register_path=research/internlm2, convert=HF_DIR)``: the shipped YAML with a
Hub-layout folder -- converted through the plug-in, architecture from its config.json -- gives the reference's logits
and greedy tokens. Run with ``qkv_concat: True`` (the parity test covers the split layout): the fused projection
is ``attention.w`` (MindFormers' InternLM2 name, InternLM2's ``wqkv`` rows unchanged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.family_parity import hf_greedy, hf_logits, prompt_ids, reference_checkpoint, reference_model

PLUGIN_DIR = Path(__file__).resolve().parents[3] / "research" / "internlm2"


def test_load_model_with_convert_from_the_predict_yaml(tmp_path, monkeypatch):
    import mf_ext
    from mf_ext.registry import load_plugin

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    family = load_plugin(str(PLUGIN_DIR)).family
    ref = reference_model(family, "internlm2_gqa_dynamic", seed=1)
    hf_dir = reference_checkpoint(family, ref, tmp_path / "hf")
    model = mf_ext.load_model(
        config=str(PLUGIN_DIR / "predict.yaml"), register_path=str(PLUGIN_DIR), convert=str(hf_dir), mode=1,
        seq_length=64, use_past=True, qkv_concat=True,
    )  # fmt: skip
    assert (model.config.hidden_size, model.config.num_layers, model.config.vocab_size) == (64, 2, 256)
    names = {p.name for p in model.get_parameters()}
    assert "model.layers.0.attention.w.weight" in names and "model.layers.0.attention.wq.weight" not in names
    ids = prompt_ids(256, seed=1)
    diff = float(np.abs(mf_ext.logits(model, ids).astype(np.float64) - hf_logits(ref, ids)).max())
    assert diff <= 1e-4, diff
    out = np.asarray(mf_ext.generate(model, ids, 8, do_sample=False, use_cache=True))
    assert [int(t) for t in out[0, ids.shape[1] :]] == hf_greedy(ref, ids, 8)
