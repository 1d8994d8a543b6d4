"""Qwen3 tokenizers for MindFormers: Qwen's byte-level BPE (the same ``vocab.json`` / ``merges.txt`` scheme, regex and
special tokens as Qwen2's; HF reads Qwen3 checkpoints with ``Qwen2Tokenizer``), under this family's class names
(MindFormers' registry is keyed by class name). The machinery is ``mf_ext.tokenization``; a ``tokenizer_config.json``
beside ``vocab.json`` (every HF Qwen3 folder has one) supplies the added tokens (``<think>``, tools ...), their ids,
the eos token and the chat template.
"""

from __future__ import annotations

from mf_ext.tokenization import ByteLevelBPETokenizer, ByteLevelBPETokenizerFast

from .family import CHATML_TEMPLATE

__all__ = ["QWEN_PATTERN", "QWEN_SPECIAL_TOKENS", "Qwen3Tokenizer", "Qwen3TokenizerFast"]

# Qwen's pre-tokenizer: Llama 3's shape with single digits (see research/qwen2/qwen2_tokenizer.py)
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


class Qwen3Tokenizer(_QwenDefaults, ByteLevelBPETokenizer):
    """Qwen3 tokenizer (pure Python): ``Qwen3Tokenizer(vocab_file, merges_file)``."""


class Qwen3TokenizerFast(_QwenDefaults, ByteLevelBPETokenizerFast):
    """Qwen3 tokenizer backed by HF ``tokenizers``: ``tokenizer_file``, or ``vocab_file`` + ``merges_file``."""

    slow_tokenizer_class = Qwen3Tokenizer
