"""A tiny DeepSeek-V3 finetunes on CPU through the family's finetune.yaml (``--convert`` of a random HF model, MLA
and grouped sigmoid routing, no auxiliary loss: the family's default): the loss goes down."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.train.ft_helpers import write_rows

PLUGIN = Path(__file__).resolve().parents[3] / "research" / "deepseek3"
VOCAB, SEQ = 128, 32
HF_KW = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=4, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8,
             qk_rope_head_dim=8, v_head_dim=8, first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2,
             n_group=2, topk_group=1, max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
             eos_token_id=2)  # fmt: skip


def test_tiny_deepseek3_finetune_loss_goes_down(tmp_path, monkeypatch):
    import torch
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    from mf_ext.api import prepare
    from mf_ext.train import finetune

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    DeepseekV3ForCausalLM(DeepseekV3Config(**HF_KW)).save_pretrained(tmp_path / "hf")
    base = np.random.default_rng(0).integers(3, VOCAB, (8, SEQ + 1))  # 8 repeating sequences: learnable
    data = write_rows(tmp_path / "rows.mindrecord", np.concatenate([base, base]))
    cfg, _entries, ckpt = prepare(str(PLUGIN / "finetune.yaml"), str(PLUGIN), convert=str(tmp_path / "hf"),
                                  overrides=[f"model.model_config.seq_length={SEQ}", "runner_config.epochs=3",
                                             "runner_config.batch_size=4", "lr_schedule.learning_rate=0.01"])  # fmt: skip
    assert cfg.model.model_config.output_router_logits is False
    losses = finetune(cfg, train_dataset=data, output_dir=tmp_path / "out", load_checkpoint=ckpt, progress=False).losses
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:2]), losses
