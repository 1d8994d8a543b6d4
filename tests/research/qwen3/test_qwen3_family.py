"""The qwen3 family end to end: ``mf_ext.load_model`` with ``--convert HF_DIR`` (architecture, explicit head_dim and
q/k norms from config.json) against HF transformers' ``Qwen3ForCausalLM``, and the predict YAML's tokenizer against HF's
tokenizer for Qwen3 checkpoints (``Qwen2Tokenizer``) on the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.research.qwen2.qwen_files import CORPUS, make_hf_qwen

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "qwen3"
YAML = PLUGIN / "predict.yaml"


def test_load_model_and_tokenizer_from_the_predict_yaml(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Tokenizer

    import mf_ext

    hf_dir = make_hf_qwen(tmp_path / "hf", "qwen3", seed=5, head_dim=32)  # head_dim 32 != 64 / 4
    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    model = mf_ext.load_model(config=str(YAML), register_path=str(PLUGIN), convert=str(hf_dir), mode=1, seq_length=64)
    c = model.config
    assert (c.hidden_size, c.num_layers, c.n_kv_heads, c.head_dim, c.tie_word_embeddings) == (64, 3, 1, 32, True)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    ids = np.random.default_rng(1).integers(0, 320, size=(2, 24)).astype(np.int32)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        want = hf(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    assert float(np.abs(mf_ext.logits(model, ids) - want).max()) <= 1e-4

    tok = mf_ext.load_tokenizer(
        str(YAML), str(PLUGIN), vocab_file=str(hf_dir / "vocab.json"), merges_file=str(hf_dir / "merges.txt")
    )
    theirs = Qwen2Tokenizer.from_pretrained(str(hf_dir))
    assert type(tok).__name__ == "Qwen3Tokenizer" and tok.eos_token == theirs.eos_token == "<|im_end|>"
    for text in [*CORPUS, "<|im_start|>user\nHi<|im_end|>\n<tool_call>x</tool_call>"]:
        assert tok(text)["input_ids"] == theirs(text)["input_ids"], text
