"""Qwen tokenizers (Qwen1.5 / Qwen2 / Qwen2.5, and Qwen3's, which is the same) for MindFormers.

Byte-level BPE over ``vocab.json`` + ``merges.txt`` (or the HF ``tokenizer.json``), registrable through YAML::

    processor:
      tokenizer:
        type: Qwen2Tokenizer                     # or Qwen2TokenizerFast
        auto_register: qwen2_tokenizer.Qwen2Tokenizer
        vocab_file: /path/to/Qwen2.5-7B-Instruct/vocab.json
        merges_file: /path/to/Qwen2.5-7B-Instruct/merges.txt

The generic machinery is ``mf_ext.tokenization``; what is Qwen's lives here: the pre-tokenization regex (Llama 3's
shape, but single digits), NFC normalisation, the ChatML special tokens after the base vocabulary
(``<|endoftext|>`` = 151643, ``<|im_start|>`` = 151644, ``<|im_end|>`` = 151645 for the real vocabulary; a
``tokenizer_config.json`` beside ``vocab.json`` -- as in every HF Qwen folder -- gives the full list of added tokens
and their ids) and the defaults of HF's ``Qwen2Tokenizer`` (no BOS, ``<|endoftext|>`` as eos/pad/unk).
Both classes agree id for id with HF ``Qwen2Tokenizer`` / ``Qwen2TokenizerFast`` on the same files
(tests/research/qwen2/test_tokenizer.py).
"""

from __future__ import annotations

from mf_ext.tokenization import ByteLevelBPETokenizer, ByteLevelBPETokenizerFast

from .family import CHATML_TEMPLATE

__all__ = ["QWEN_PATTERN", "QWEN_SPECIAL_TOKENS", "Qwen2Tokenizer", "Qwen2TokenizerFast"]

# contractions, letter runs with one optional leading non-letter, single digits, punctuation runs (absorbing trailing
# newlines), newline runs, and whitespace (a trailing space stays with the next word because of `\s+(?!\S)`)
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


class _QwenDefaults:
    pattern = QWEN_PATTERN
    normalization = "NFC"
    special_tokens = QWEN_SPECIAL_TOKENS
    default_unk_token = "<|endoftext|>"
    default_eos_token = "<|endoftext|>"
    default_pad_token = "<|endoftext|>"
    default_chat_template = CHATML_TEMPLATE


class Qwen2Tokenizer(_QwenDefaults, ByteLevelBPETokenizer):
    """Qwen2 tokenizer (pure Python): ``Qwen2Tokenizer(vocab_file, merges_file)``; see the module docstring."""


class Qwen2TokenizerFast(_QwenDefaults, ByteLevelBPETokenizerFast):
    """Qwen2 tokenizer backed by HF ``tokenizers``: ``tokenizer_file`` (tokenizer.json), or ``vocab_file`` +
    ``merges_file``."""

    slow_tokenizer_class = Qwen2Tokenizer
