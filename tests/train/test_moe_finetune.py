"""A tiny Mixtral finetunes on CPU through the family's finetune.yaml (``--convert`` of a random HF model): the loss
goes down, and with ``output_router_logits`` the router load-balancing loss is part of the training loss and
reported (``loss_terms``), both terms equal to HF transformers' on the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.train.ft_helpers import write_rows

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "research" / "mixtral"
YAML = PLUGIN / "finetune.yaml"
VOCAB, SEQ = 128, 32
HF_KW = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=128,
    pad_token_id=0, bos_token_id=1, eos_token_id=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    import os

    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    root = tmp_path_factory.mktemp("moe_ft")
    os.environ["MF_EXT_CACHE"] = str(root / "cache")
    torch.manual_seed(0)
    MixtralForCausalLM(MixtralConfig(**HF_KW)).save_pretrained(root / "hf")
    # a learnable corpus: 8 repeating sequences (SEQ + 1 tokens per row, as `mf-ext data` writes them)
    rng = np.random.default_rng(0)
    base = rng.integers(3, VOCAB, (8, SEQ + 1))
    rows = np.concatenate([base, base])
    return {"root": root, "hf": root / "hf", "data": write_rows(root / "rows.mindrecord", rows), "rows": rows}


def _prepare(ws, *overrides):
    from mf_ext.api import prepare

    ov = [f"model.model_config.seq_length={SEQ}", *overrides]
    return prepare(str(YAML), str(PLUGIN), convert=str(ws["hf"]), overrides=ov)


def test_router_aux_loss_is_in_the_training_loss_and_matches_hf(ws, monkeypatch, tmp_path):
    import mindspore as ms
    import torch
    from transformers import MixtralForCausalLM

    from mf_ext.api import build_model_from_config

    monkeypatch.chdir(tmp_path)
    cfg, _entries, ckpt = _prepare(ws, "context.mode=1")
    assert cfg.model.model_config.output_router_logits is True
    coef = float(cfg.model.model_config.router_aux_loss_coef)
    model = build_model_from_config(cfg, checkpoint=ckpt)
    ids = ws["rows"][:2]
    t_ids, t_labels = ms.Tensor(ids, ms.int32), ms.Tensor(ids, ms.int32)
    ce, aux = (float(x.asnumpy()) for x in model.loss_terms(t_ids, t_labels))
    total = float(model(t_ids, t_labels).asnumpy())
    assert total == pytest.approx(ce + coef * aux, abs=1e-5)

    hf = MixtralForCausalLM.from_pretrained(str(ws["hf"]), dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        want_ce = float(hf(torch.tensor(ids), labels=torch.tensor(ids)).loss)
        # our forward sees tokens[:-1] (MindFormers' shift): HF's aux loss over the same tokens
        want_aux = float(hf(torch.tensor(ids[:, :-1]), output_router_logits=True).aux_loss)
    assert ce == pytest.approx(want_ce, abs=1e-5)
    assert aux == pytest.approx(want_aux, abs=1e-5)
    assert aux > 0

    # off unless the config asks for it: the plain cross-entropy
    cfg_off, _, _ = _prepare(ws, "context.mode=1", "model.model_config.output_router_logits=False")
    off = build_model_from_config(cfg_off, checkpoint=ckpt)
    assert float(off(t_ids, t_labels).asnumpy()) == pytest.approx(ce, abs=1e-5)


def test_tiny_mixtral_finetune_loss_goes_down(ws, monkeypatch, tmp_path):
    from mf_ext.train import finetune

    monkeypatch.chdir(tmp_path)
    cfg, _entries, ckpt = _prepare(
        ws, "runner_config.epochs=4", "runner_config.batch_size=4", "lr_schedule.learning_rate=0.01"
    )
    result = finetune(cfg, train_dataset=ws["data"], output_dir=tmp_path / "out", load_checkpoint=ckpt, progress=False)
    losses = result.losses
    assert len(losses) == 16 and all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:2]), losses
