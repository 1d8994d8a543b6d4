"""GLM-4 finetune on CPU from research/glm4/finetune.yaml: --convert of a tiny HF GlmForCausalLM, loss goes down,
the result exports to an HF folder whose transformers logits equal our model's on the finetuned weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.ft_helpers import REPO, hf_logits, ms_logits, write_rows

PLUGIN = REPO / "research" / "glm4"
YAML = PLUGIN / "finetune.yaml"
VOCAB = 128


@pytest.fixture(scope="module")
def hf_glm(tmp_path_factory):
    import torch
    from transformers import GlmConfig, GlmForCausalLM

    cfg = GlmConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=128, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("glm_ft") / "hf"
    GlmForCausalLM(cfg).save_pretrained(out)
    return out


def test_finetune_yaml_loss_drops_and_exports_to_hf(hf_glm, tmp_path, monkeypatch):
    from mf_ext.api import build_model_from_config, prepare
    from mf_ext.registry import load_plugin
    from mf_ext.train import finetune
    from mf_ext.train.export import export_merged_hf, model_params

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    patterns = np.random.default_rng(0).integers(2, VOCAB, size=(4, 33))
    data = write_rows(tmp_path / "rows.mindrecord", np.tile(patterns, (4, 1)))  # 16 rows of 4 memorable sequences
    overrides = ["runner_config.epochs=4", "runner_config.batch_size=4", "lr_schedule.learning_rate=0.01"]
    cfg, _entries, ckpt = prepare(str(YAML), str(PLUGIN), convert=str(hf_glm), overrides=overrides)
    result = finetune(cfg, train_dataset=data, output_dir=tmp_path / "run", load_checkpoint=ckpt, progress=False)
    losses = result.losses
    assert len(losses) == 16, losses
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:2]), losses

    last = result.checkpoints[-1]
    assert "transformer.encoder.layers.0.self_attention.query_key_value.bias" in model_params(last)
    hf_out = export_merged_hf(last, tmp_path / "hf_ft", load_plugin(str(PLUGIN)))
    import mindspore as ms

    params = model_params(last)
    model_only = tmp_path / "ft.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], str(model_only))
    model = build_model_from_config(cfg, checkpoint=model_only)
    ids = patterns[:2, :24]
    ours, theirs = ms_logits(model, ids), hf_logits(hf_out, ids)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.abs(hf_logits(hf_glm, ids) - theirs).max() > 1e-2  # the weights did move
