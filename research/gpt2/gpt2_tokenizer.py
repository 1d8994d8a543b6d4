"""GPT2 byte-level BPE tokenizers for MindFormers, on ``mf_ext.tokenization``'s generic byte-level BPE.

Reads GPT2's ``vocab.json`` + ``merges.txt`` (``merges.txt`` found beside ``vocab.json`` when not given) or a
``tokenizer.json`` (also when named as ``vocab_file``: MindFormers' ``build_tokenizer`` requires that key).
What is GPT2's lives here: its pre-tokenization regex, no normalisation, ``<|endoftext|>`` as unk/bos/eos (id 50256
in the real vocabulary, where it is a vocabulary entry) and no special tokens added around the text. Registrable
through YAML::

    processor:
      tokenizer:
        type: GPT2BPETokenizerFast                      # or GPT2BPETokenizer (pure Python)
        auto_register: gpt2_tokenizer.GPT2BPETokenizerFast
        vocab_file: /path/to/gpt2/tokenizer.json        # or vocab.json, with merges.txt beside it

Both agree id for id with HF's ``GPT2TokenizerFast`` on the same files (tests/research/gpt2/test_gpt2.py).
"""

from __future__ import annotations

import os

from mf_ext.tokenization import ByteLevelBPETokenizer, ByteLevelBPETokenizerFast, TokenizerFileError

__all__ = ["GPT2_PATTERN", "GPT2BPETokenizer", "GPT2BPETokenizerFast"]

# contractions, letter / digit / punctuation runs with one optional leading space, whitespace (a trailing space
# stays with the next word because of `\s+(?!\S)`)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _files(vocab_file, merges_file, tokenizer_file) -> tuple:
    """``(vocab_file, merges_file, tokenizer_file)`` with a ``tokenizer.json`` given as ``vocab_file`` moved to
    ``tokenizer_file`` and ``merges.txt`` looked up beside ``vocab.json``."""
    if tokenizer_file is None and vocab_file is not None and os.fspath(vocab_file).endswith("tokenizer.json"):
        return None, None, os.fspath(vocab_file)
    if tokenizer_file is None and vocab_file is not None and merges_file is None:
        merges_file = os.path.join(os.path.dirname(os.fspath(vocab_file)), "merges.txt")
        if not os.path.isfile(merges_file):
            raise TokenizerFileError(f"GPT2 tokenizer: {merges_file!r} not found: expected GPT2's merges.txt")
    return vocab_file, merges_file, tokenizer_file


class _GPT2Defaults:
    pattern = GPT2_PATTERN
    normalization = None
    special_tokens = ("<|endoftext|>",)
    default_unk_token = "<|endoftext|>"
    default_bos_token = "<|endoftext|>"
    default_eos_token = "<|endoftext|>"


class GPT2BPETokenizer(_GPT2Defaults, ByteLevelBPETokenizer):
    """GPT2 tokenizer (pure Python): ``GPT2BPETokenizer(vocab_file, merges_file=None)``."""

    def __init__(self, vocab_file, merges_file=None, **kwargs):
        vocab_file, merges_file, _ = _files(vocab_file, merges_file, None)
        super().__init__(vocab_file, merges_file, **kwargs)


class GPT2BPETokenizerFast(_GPT2Defaults, ByteLevelBPETokenizerFast):
    """GPT2 tokenizer backed by HF ``tokenizers``: ``tokenizer_file`` (tokenizer.json), or ``vocab_file`` (+
    ``merges_file``, default: beside it)."""

    slow_tokenizer_class = GPT2BPETokenizer

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, **kwargs):
        vocab_file, merges_file, tokenizer_file = _files(vocab_file, merges_file, tokenizer_file)
        super().__init__(vocab_file=vocab_file, merges_file=merges_file, tokenizer_file=tokenizer_file, **kwargs)
