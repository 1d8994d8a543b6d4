"""The internlm2 plug-in's sentencepiece tokenizer against HF ``LlamaTokenizer(legacy=True)`` on the same model file.

The sentencepiece model is trained here (offline, < 1 s) with the special pieces InternLM2-chat's vocabulary defines
(``<|im_start|>``, ``<|im_end|>`` ...) as user-defined symbols and byte fallback, as InternLM2's own model has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "internlm2"
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>"]

CORPUS = [
    "On a small island at the edge of a cold grey sea there stood a white lighthouse.",
    "The keeper climbed the stairs every evening to light the lamp, and the little robot followed him.",
    "def f(x):\n    return x ** 2  # square",
    "在海边的一个小岛上，有一座白色的灯塔。",
    "numbers 1 12 123 3.14159 -42 2026-12-01",
]
TEXTS = [
    "Hello world! The lighthouse keeper.",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces and   inner   runs  ",
    "unseen: zebra Ω 🌊 和平",
    "def g(y):\n\treturn y",
    "",
    " ",
]


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory) -> Path:
    import sentencepiece as spm

    folder = tmp_path_factory.mktemp("spm")
    (folder / "corpus.txt").write_text("\n".join(CORPUS * 20), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(folder / "corpus.txt"),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        user_defined_symbols=SPECIALS,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return folder / "tokenizer.model"


@pytest.fixture(scope="module")
def ours(sp_model):
    from mf_ext.registry import load_plugin

    cls = load_plugin(str(PLUGIN)).import_module("internlm2_tokenizer").InternLM2Tokenizer
    return cls(vocab_file=str(sp_model))


@pytest.fixture(scope="module")
def hf(sp_model):
    from transformers import LlamaTokenizer

    return LlamaTokenizer(vocab_file=str(sp_model), legacy=True, add_bos_token=True, add_eos_token=False)


@pytest.mark.parametrize("text", TEXTS)
def test_ids_and_text_equal_hf_llama_tokenizer(ours, hf, text):
    want = hf(text)["input_ids"]
    got = ours(text)["input_ids"]
    assert got == want
    assert got[0] == 1  # <s>
    assert ours.decode(got, skip_special_tokens=True) == hf.decode(want, skip_special_tokens=True)


def test_special_pieces_are_single_ids(ours, sp_model):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    ids = ours("<|im_start|>user<|im_end|>", add_special_tokens=False)["input_ids"]
    # (sentencepiece's dummy prefix may put a "▁" piece first)
    assert sp.piece_to_id("<|im_start|>") in ids[:2] and ids[-1] == sp.piece_to_id("<|im_end|>")
    assert ours.vocab_size == sp.get_piece_size() == 400
    assert ours.decode(ids).strip() == "<|im_start|>user<|im_end|>"


def test_eos_and_pad(ours, sp_model):
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (1, 2, 2)
    cls = type(ours)
    with_eos = cls(vocab_file=str(sp_model), add_eos_token=True)
    assert with_eos("hi")["input_ids"][-1] == 2


def test_bad_vocab_file_is_one_line_error(tmp_path):
    from mf_ext.errors import MfExtError
    from mf_ext.registry import load_plugin

    cls = load_plugin(str(PLUGIN)).import_module("internlm2_tokenizer").InternLM2Tokenizer
    with pytest.raises(MfExtError, match="is not a file"):
        cls(vocab_file=str(tmp_path / "missing.model"))
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(MfExtError, match="not a sentencepiece model"):
        cls(vocab_file=str(bad))
