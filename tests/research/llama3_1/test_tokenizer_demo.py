"""The embedded demo (research/llama3_1/demo): HF greedy decoding continues corpus text, artifacts stay small.

The reference for "sensible" is the corpus itself: the demo model was trained on it, so greedy decoding from the
start of a corpus sentence must reproduce the words that follow it there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "llama3_1"
DEMO = PLUGIN / "demo"

PROMPTS = [
    "On a small island at the edge of a cold grey sea",
    "Question: What are the four things every loaf needs?\nAnswer:",
    "The Great Bear is",
]


@pytest.fixture(scope="module")
def tok():
    from mf_ext.registry import load_plugin

    mod = load_plugin(str(PLUGIN)).import_module("llama3_1_tokenizer")
    return mod.Llama3Tokenizer(str(DEMO / "tokenizer.model"))


def test_demo_hf_greedy_continues_corpus(tok):
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    corpus = (DEMO / "corpus.txt").read_text(encoding="utf-8")
    model = LlamaForCausalLM.from_pretrained(str(DEMO / "hf")).eval()
    assert model.config.rope_scaling["rope_type"] == "llama3"
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA
    for prompt in PROMPTS:
        assert prompt in corpus
        following = corpus[corpus.index(prompt) + len(prompt) :]
        ids = tok(prompt)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(
                x, attention_mask=torch.ones_like(x), max_new_tokens=24, do_sample=False, pad_token_id=tok.eos_token_id
            )
        text = tok.decode(out[0, len(ids) :].tolist(), skip_special_tokens=True)
        assert len(text) > 40 and following.startswith(text), f"{prompt!r} -> {text!r}"


def test_demo_files_consistent_and_small():
    cfg = json.loads((DEMO / "hf" / "config.json").read_text())
    tcfg = json.loads((DEMO / "hf" / "tokenizer_config.json").read_text())
    assert tcfg["added_tokens_decoder"][str(cfg["bos_token_id"])]["content"] == "<|begin_of_text|>"
    assert tcfg["added_tokens_decoder"][str(cfg["eos_token_id"])]["content"] == "<|end_of_text|>"
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024, f"demo artifacts are {total} bytes (limit 10 MiB)"


def test_predict_demo_yaml_matches_hf_config():
    """predict_demo.yaml describes the architecture of demo/hf/config.json and points at the demo files."""
    import yaml

    y = yaml.safe_load((PLUGIN / "predict_demo.yaml").read_text())
    hf = json.loads((DEMO / "hf" / "config.json").read_text())
    mc = y["model"]["model_config"]
    pairs = {
        "hidden_size": "hidden_size",
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "n_kv_heads": "num_key_value_heads",
        "intermediate_size": "intermediate_size",
        "vocab_size": "vocab_size",
        "rms_norm_eps": "rms_norm_eps",
        "theta": "rope_theta",
        "bos_token_id": "bos_token_id",
        "eos_token_id": "eos_token_id",
        "tie_word_embeddings": "tie_word_embeddings",
    }
    for ours, theirs in pairs.items():
        assert mc[ours] == hf[theirs], ours
    scaling = {k: v for k, v in mc["rope_scaling"].items() if k != "type"}
    assert scaling == {k: v for k, v in hf["rope_scaling"].items() if k != "rope_type"}
    assert (PLUGIN / y["convert"] / "model.safetensors").is_file()
    assert (PLUGIN / y["processor"]["tokenizer"]["vocab_file"]).is_file()


def test_predict_demo_yaml_has_predict_yaml_layout():
    """Same keys as predict.yaml (plus the demo's `convert`), so the demo exercises the real config path.

    The one key the demo leaves out is `context.mode`: unset, the launcher picks PyNative or graph by the size of the
    work (mode auto), while predict.yaml pins graph mode for real checkpoints."""
    import yaml

    def keys(node, prefix=""):
        if not isinstance(node, dict):
            return set()
        out = set()
        for k, v in node.items():
            out |= {prefix + k} | keys(v, prefix + k + ".")
        return out

    demo = keys(yaml.safe_load((PLUGIN / "predict_demo.yaml").read_text()))
    real = keys(yaml.safe_load((PLUGIN / "predict.yaml").read_text()))
    assert demo - real == {"convert"}
    assert real - demo == {"context.mode"}
