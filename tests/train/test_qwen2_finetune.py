"""Qwen2 finetune on CPU from research/qwen2/finetune.yaml: launcher with --convert (tied tiny Qwen2 with q/k/v
biases), data tokenized by the family's own tokenizer and ChatML template, loss goes down, export to HF reproduces
our model's logits in HF transformers' Qwen2ForCausalLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.data.sft_tokenizers import DEMO_DATA
from tests.research.qwen2.qwen_files import make_hf_qwen
from tests.train.ft_helpers import REPO, hf_logits, ms_logits, run_launcher, step_losses

PLUGIN = REPO / "research" / "qwen2"
YAML = PLUGIN / "finetune.yaml"


def test_qwen2_finetune_loss_drops_and_export_matches_hf(tmp_path, monkeypatch):
    import mf_ext
    from mf_ext.api import build_model_from_config, prepare
    from mf_ext.data.preprocess import preprocess
    from mf_ext.registry import load_plugin
    from mf_ext.train.export import export_merged_hf, model_params

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    rows = json.loads(DEMO_DATA.read_text())
    corpus = [" ".join(r.get(k, "") for k in ("instruction", "input", "output")) for r in rows]
    corpus += ["system user assistant You are a helpful assistant."] * 20
    hf = make_hf_qwen(tmp_path / "hf", "qwen2", seed=6, corpus=corpus, tokenizer_vocab=480, num_key_value_heads=2)
    tok = mf_ext.load_tokenizer(
        str(YAML), str(PLUGIN), vocab_file=str(hf / "vocab.json"), merges_file=str(hf / "merges.txt")
    )
    assert type(tok).__name__ == "Qwen2Tokenizer"
    data = tmp_path / "demo.mindrecord"
    plugin = load_plugin(str(PLUGIN))
    stats = preprocess(tok, DEMO_DATA, data, 64, progress=False, chat_template=plugin.family.chat_template)
    assert stats.rows == 40 and stats.samples_dropped == 0, stats

    out = tmp_path / "run"
    r = run_launcher(
        "--config", str(YAML), "--register_path", str(PLUGIN), "--run_mode", "finetune", "--convert", str(hf),
        "--train_dataset", str(data), "--output_dir", str(out), "--epochs", "2", "--batch_size", "8",
        "--lr_schedule.learning_rate", "0.01",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    losses = step_losses(r.stdout)
    assert len(losses) == 10  # 40 rows / batch 8 x 2 epochs
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:2]), losses
    ckpt = out / "checkpoint" / "rank_0" / "qwen2_rank_0-2_5.ckpt"
    assert ckpt.is_file(), sorted(p.name for p in ckpt.parent.iterdir())

    hf_out = export_merged_hf(ckpt, tmp_path / "hf_ft", plugin)
    cfg, _entries, _ = prepare(str(YAML), str(PLUGIN), convert=str(hf))
    import mindspore as ms

    params = model_params(ckpt)
    model_only = tmp_path / "ft.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], str(model_only))
    model = build_model_from_config(cfg, checkpoint=model_only)
    ids = np.random.default_rng(0).integers(0, 500, size=(2, 24))
    ours, theirs = ms_logits(model, ids), hf_logits(hf_out, ids)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.abs(hf_logits(hf, ids) - theirs).max() > 1e-2  # the weights did move
    assert Path(hf_out / "config.json").is_file()
