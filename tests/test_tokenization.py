"""``mf_ext.tokenization`` (family-neutral byte-level BPE) with another family's settings than Qwen's: GPT-2's
pre-tokenization regex, no normalisation, ``<|endoftext|>`` after the base vocabulary -- against HF transformers'
``GPT2Tokenizer`` on the same vocab.json / merges.txt (trained here with the ``tokenizers`` library)."""

from __future__ import annotations

import pytest

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
TEXTS = [
    "Hello world! It's 2026, isn't it?",
    "  two leading spaces, trailing   ",
    "tabs\tand\nnewlines\n\n",
    "unicode: café naïve 東京 🚀",
    "numbers 1234567 and 3.14",
    "a<|endoftext|>b",
    "",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    out = tmp_path_factory.mktemp("bpe")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tk.train_from_iterator([t for t in TEXTS if "<|" not in t] * 5, trainer)
    tk.model.save(str(out))
    return out


def _classes():
    from mf_ext.tokenization import ByteLevelBPETokenizer, ByteLevelBPETokenizerFast

    settings = {
        "pattern": GPT2_PATTERN,
        "special_tokens": ("<|endoftext|>",),
        "default_eos_token": "<|endoftext|>",
        "default_bos_token": "<|endoftext|>",
        "default_unk_token": "<|endoftext|>",
    }
    return type("Gpt2Like", (ByteLevelBPETokenizer,), settings), type(
        "Gpt2LikeFast", (ByteLevelBPETokenizerFast,), settings
    )


@pytest.mark.parametrize("fast", [False, True])
def test_generic_byte_level_bpe_equals_hf_gpt2_tokenizer(folder, fast):
    from transformers import GPT2Tokenizer

    theirs = GPT2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    slow_cls, fast_cls = _classes()
    cls = fast_cls if fast else slow_cls
    kwargs = {"vocab_file": str(folder / "vocab.json"), "merges_file": str(folder / "merges.txt")}
    ours = cls(**kwargs)
    assert ours.eos_token_id == theirs.eos_token_id == len(theirs.encoder)
    for text in TEXTS:
        ids = theirs(text)["input_ids"]
        assert ours(text)["input_ids"] == ids, text
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True), text


def test_a_class_without_pattern_is_refused(folder):
    from mf_ext.tokenization import ByteLevelBPETokenizer, TokenizerFileError

    with pytest.raises(TokenizerFileError, match="sets no pre-tokenization pattern"):
        ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
