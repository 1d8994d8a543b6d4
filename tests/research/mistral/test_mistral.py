"""research/mistral beyond the Family-driven parity test (tests/test_family_parity.py runs its tiny configurations):
the sliding window really decides the reference's output in those configurations, the HF-config mapping, the
tokenizer against HF's ``LlamaTokenizerFast`` (built offline from a sentencepiece model trained here) and
``mf_ext.load_model(..., convert=HF_DIR)`` taking the architecture from ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.family_parity import hf_greedy, hf_logits, prompt_ids, reference_model

REPO = Path(__file__).resolve().parents[3]
FOLDER = REPO / "research" / "mistral"


@pytest.fixture(scope="module")
def plugin():
    from mf_ext.registry import load_plugin

    return load_plugin(FOLDER)


def test_the_window_decides_the_reference_output(plugin):
    """The parity configuration with window 8 would also pass with full attention if the window never mattered:
    the reference with the window differs from the same weights without it, in logits and greedy tokens."""
    windowed = reference_model(plugin.family, "gqa_window8")
    assert windowed.config.sliding_window == 8
    full = reference_model(plugin.family, "gqa_window8")
    full.config.sliding_window = None
    ids = prompt_ids(windowed.config.vocab_size)  # 10 tokens > window
    assert np.abs(hf_logits(windowed, ids) - hf_logits(full, ids)).max() > 1e-2
    assert hf_greedy(windowed, ids) != hf_greedy(full, ids)


def test_hf_config_mapping_round_trip_and_refusals(plugin):
    to_mc, to_hf = plugin.family.hf_mapping()
    from transformers import MistralConfig

    hf = MistralConfig(
        hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=32, sliding_window=8, vocab_size=256, rope_theta=1e6,
    ).to_dict()  # fmt: skip
    mc = to_mc(hf)
    assert (mc["sliding_window"], mc["head_dim"], mc["n_kv_heads"], mc["theta"]) == (8, 32, 2, 1e6)
    back = to_hf(mc)
    assert back["architectures"] == ["MistralForCausalLM"] and back["model_type"] == "mistral"
    assert to_mc(back) == mc
    assert MistralConfig(**back).sliding_window == 8
    for change, match in (
        ({"model_type": "llama"}, "model_type 'llama' is not a Mistral model"),
        ({"sliding_window": 0}, "sliding_window: expected a positive int or null, got 0"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling: .* is not supported"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
    ):
        with pytest.raises(ValueError, match=match):
            to_mc({**hf, **change})
    assert plugin.family.check_model_config({"sliding_window": -1})[0][0] == "sliding_window"


# ------------------------------------------------------------------------------------------------------- tokenizer
TEXTS = [
    "Hello the quick brown fox",
    "  leading spaces and\n\nnewlines\ttabs",
    "北京 island 🌊 bytes fall back",
    "[INST] the lighthouse [/INST] stood there</s>",
    "",
    "a" * 50,
]


@pytest.fixture(scope="module")
def hf_tokenizer_dir(tmp_path_factory):
    """A sentencepiece BPE model with byte fallback (Mistral's kind), trained here, and HF's ``LlamaTokenizerFast``
    made from it (transformers' own sentencepiece -> tokenizer.json conversion), saved."""
    import random

    # MindSpore's generated checkpoint_pb2 needs the protobuf backend MindSpore picks when it is imported first;
    # transformers' sentencepiece conversion would otherwise load protobuf's default one first
    import mindspore  # noqa: F401
    import sentencepiece as spm
    from transformers import LlamaTokenizerFast

    tmp = tmp_path_factory.mktemp("spm")
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog island sea lighthouse white grey stood there INST".split()
    (tmp / "corpus.txt").write_text("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)))
    spm.SentencePieceTrainer.train(
        input=str(tmp / "corpus.txt"), model_prefix=str(tmp / "tok"), vocab_size=300, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    hf = LlamaTokenizerFast(vocab_file=str(tmp / "tok.model"), legacy=False, from_slow=True)
    hf.save_pretrained(tmp / "hf")
    return tmp / "hf"


def test_tokenizer_matches_hf_llama_tokenizer_fast(plugin, hf_tokenizer_dir):
    from transformers import LlamaTokenizerFast

    cls = plugin.import_module("mistral_tokenizer").MistralTokenizerFast
    hf = LlamaTokenizerFast.from_pretrained(hf_tokenizer_dir)
    ours = cls(vocab_file=str(hf_tokenizer_dir / "tokenizer.json"))
    beside = cls(vocab_file=str(hf_tokenizer_dir / "tokenizer.model"))  # tokenizer.json found beside it
    for text in TEXTS:
        want = hf(text)["input_ids"]
        assert ours(text)["input_ids"] == want == beside(text)["input_ids"], text
        assert want[0] == 1 and ours.bos_token_id == 1 and ours.eos_token_id == 2
        assert ours(text, add_special_tokens=False)["input_ids"] == hf(text, add_special_tokens=False)["input_ids"]
        assert ours.decode(want, skip_special_tokens=True) == hf.decode(want, skip_special_tokens=True)
    assert any(3 <= i < 259 for t in TEXTS for i in hf(t)["input_ids"])  # byte-fallback tokens were exercised
    hf_eos = LlamaTokenizerFast.from_pretrained(hf_tokenizer_dir, add_bos_token=False, add_eos_token=True)
    ours_eos = cls(vocab_file=str(hf_tokenizer_dir / "tokenizer.json"), add_bos_token=False, add_eos_token=True)
    assert ours_eos("the sea")["input_ids"] == hf_eos("the sea")["input_ids"]
    assert ours_eos("the sea")["input_ids"][-1] == 2


def test_tokenizer_bad_input_names_the_file(plugin, tmp_path):
    cls = plugin.import_module("mistral_tokenizer").MistralTokenizerFast
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        cls(vocab_file=str(tmp_path / "tokenizer.model"))
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a valid tokenizer.json"):
        cls(vocab_file=str(tmp_path / "tokenizer.json"))


# ------------------------------------------------------------------------------------------------------ load_model
# MQA, tied head, explicit head_dim (q width 128 != hidden 64), a window wider than the prompt: the variants the
# parity configuration (GQA, window 8) leaves out; the Family keeps one tiny configuration to save test time
VARIANT = {
    "vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 256, "pad_token_id": 0, "num_key_value_heads": 1, "head_dim": 32,
    "sliding_window": 16, "tie_word_embeddings": True,
}  # fmt: skip


def test_load_model_converts_with_architecture_from_config_json(plugin, tmp_path, monkeypatch):
    """``mf_ext.load_model(config=predict.yaml, register_path=..., convert=HF_DIR)``: the YAML's 7B architecture
    is replaced by the tiny one of config.json (window and head_dim included), the model reproduces the reference's
    logits, and the checkpoint converts back to the same bytes."""
    import dataclasses

    import mf_ext
    from tests.convert.convert_helpers import read_st_dir

    monkeypatch.chdir(tmp_path)
    family = plugin.family
    family = dataclasses.replace(family, reference=dataclasses.replace(family.reference, tiny={"variant": VARIANT}))
    ref = reference_model(family, "variant")
    ref.save_pretrained(tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["MistralForCausalLM"]
    model = mf_ext.load_model(
        config=str(FOLDER / "predict.yaml"), register_path=str(FOLDER), convert=str(tmp_path / "hf"),
        mode=1, seq_length=64,
    )  # fmt: skip
    assert type(model).__name__ == "MistralForCausalLM"
    c = model.config
    assert (c.num_layers, c.hidden_size, c.n_kv_heads, c.head_dim, c.sliding_window, c.tie_word_embeddings) == (
        2, 64, 1, 32, 16, True,
    )  # fmt: skip
    ids = prompt_ids(256, seed=1)
    assert np.abs(mf_ext.logits(model, ids) - hf_logits(ref, ids)).max() <= 1e-4
    plugin.convert_pt_to_ms(tmp_path / "hf", tmp_path / "m.ckpt", progress=False)
    plugin.convert_ms_to_pt(tmp_path / "m.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(tmp_path / "back") == read_st_dir(tmp_path / "hf")
