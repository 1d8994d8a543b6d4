"""The baichuan2 plug-in's sentencepiece tokenizer against HF ``LlamaTokenizer(legacy=True)`` on the same model file.

The sentencepiece model is trained here (offline, < 1 s) with reserved pieces as user-defined symbols (Baichuan2-Chat
marks turns with ``<reserved_106>`` / ``<reserved_107>``) and byte fallback. Baichuan2's tokenizer_config.json adds
neither ``<s>`` nor ``</s>``, so the HF reference is built with the same switches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "baichuan2"
SPECIALS = ["<reserved_106>", "<reserved_107>"]

CORPUS = [
    "On a small island at the edge of a cold grey sea there stood a white lighthouse.",
    "The keeper climbed the stairs every evening to light the lamp, and the little robot followed him.",
    "def f(x):\n    return x ** 2  # square",
    "在海边的一个小岛上，有一座白色的灯塔。",
    "numbers 1 12 123 3.14159 -42 2026-12-01",
]
TEXTS = [
    "Hello world! The lighthouse keeper.",
    "<reserved_106>Hi there<reserved_107>Hello!</s>",
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

    cls = load_plugin(str(PLUGIN)).import_module("baichuan2_tokenizer").Baichuan2Tokenizer
    return cls(vocab_file=str(sp_model))


@pytest.fixture(scope="module")
def hf(sp_model):
    from transformers import LlamaTokenizer

    return LlamaTokenizer(
        vocab_file=str(sp_model), legacy=True, add_bos_token=False, add_eos_token=False, pad_token="<unk>"
    )


@pytest.mark.parametrize("text", TEXTS)
def test_ids_and_text_equal_hf_llama_tokenizer(ours, hf, text):
    want = hf(text)["input_ids"]
    got = ours(text)["input_ids"]
    assert got == want
    assert 1 not in got  # no <s>
    assert ours.decode(got, skip_special_tokens=True) == hf.decode(want, skip_special_tokens=True)


def test_special_pieces_are_single_ids(ours, sp_model):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    ids = ours("<reserved_106>user<reserved_107>")["input_ids"]
    # (sentencepiece's dummy prefix may put a "▁" piece first)
    assert sp.piece_to_id("<reserved_106>") in ids[:2] and ids[-1] == sp.piece_to_id("<reserved_107>")
    assert ours.vocab_size == sp.get_piece_size() == 400
    assert ours.decode(ids).strip() == "<reserved_106>user<reserved_107>"


def test_eos_and_pad(ours, sp_model):
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (1, 2, 0)
    cls = type(ours)
    with_eos = cls(vocab_file=str(sp_model), add_eos_token=True)
    assert with_eos("hi")["input_ids"][-1] == 2


def test_bad_vocab_file_is_one_line_error(tmp_path):
    from mf_ext.errors import MfExtError
    from mf_ext.registry import load_plugin

    cls = load_plugin(str(PLUGIN)).import_module("baichuan2_tokenizer").Baichuan2Tokenizer
    with pytest.raises(MfExtError, match="is not a file"):
        cls(vocab_file=str(tmp_path / "missing.model"))
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(MfExtError, match="not a sentencepiece model"):
        cls(vocab_file=str(bad))
