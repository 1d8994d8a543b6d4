"""The qwen2 family end to end: ``mf_ext.load_model`` and the launcher with ``--convert HF_DIR`` (architecture from
config.json, not from the YAML), against HF transformers' ``Qwen2ForCausalLM`` and ``Qwen2Tokenizer`` on the same
files; the HF-config mapping's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.research.qwen2.qwen_files import make_hf_qwen
from tests.test_launcher import run_launcher

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "qwen2"
YAML = PLUGIN / "predict.yaml"


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    # tied, 3 layers, hidden 64, 1 kv head: all different from the YAML's Qwen2.5-7B
    return make_hf_qwen(tmp_path_factory.mktemp("hf") / "qwen2", "qwen2", seed=4)


def test_load_model_takes_the_architecture_from_config_json(hf_dir, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    import mf_ext

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    model = mf_ext.load_model(config=str(YAML), register_path=str(PLUGIN), convert=str(hf_dir), mode=1, seq_length=64)
    c = model.config
    assert (c.hidden_size, c.num_layers, c.n_kv_heads, c.tie_word_embeddings) == (64, 3, 1, True)
    assert type(model).__name__ == "Qwen2ForCausalLM" and c.seq_length == 64
    ids = np.random.default_rng(0).integers(0, 320, size=(2, 24)).astype(np.int32)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        want = hf(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    assert float(np.abs(mf_ext.logits(model, ids) - want).max()) <= 1e-4


def test_launcher_predict_with_convert_matches_hf_greedy_text(hf_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Tokenizer

    prompt, n = "The keeper climbed the stairs", 10
    res = run_launcher(
        [
            "--config", str(YAML), "--register_path", str(PLUGIN), "--convert", str(hf_dir),
            "--processor.tokenizer.vocab_file", str(hf_dir / "vocab.json"),
            "--processor.tokenizer.merges_file", str(hf_dir / "merges.txt"),
            "--predict_data", prompt, "--max_new_tokens", str(n), "--output_dir", str(tmp_path / "out"),
            "--model.model_config.eos_token_id", "-1", "--model.model_config.seq_length", "64", "--context.mode", "1",
        ],
        tmp_path,
        tmp_path / "cache",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    written = (tmp_path / "out" / "text_generation_result.txt").read_text().strip()
    tok = Qwen2Tokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    ids = tok(prompt)["input_ids"]
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=tok.pad_token_id
        )
    assert out.shape[1] == len(ids) + n
    assert written == tok.decode(out[0].tolist(), skip_special_tokens=True)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"use_sliding_window": True}, "use_sliding_window=true is not supported"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
        ({"model_type": "llama"}, "model_type 'llama' is not supported"),
        ({"rope_scaling": {"rope_type": "longrope", "factor": 2.0}}, "'longrope' is not supported"),
    ],
)
def test_hf_config_refuses_what_the_model_does_not_compute(hf_dir, change, needle):
    from research.qwen2 import hf_config

    hf = {**json.loads((hf_dir / "config.json").read_text()), **change}
    with pytest.raises(ValueError, match=needle):
        hf_config.to_model_config(hf)


def test_hf_config_round_trip(hf_dir):
    from research.qwen2 import hf_config

    hf = json.loads((hf_dir / "config.json").read_text())
    mc = hf_config.to_model_config(hf)
    back = hf_config.to_hf_config(mc)
    assert hf_config.to_model_config(back) == mc
    for key in ("hidden_size", "num_key_value_heads", "tie_word_embeddings", "rope_theta", "vocab_size"):
        assert back[key] == hf[key], key
