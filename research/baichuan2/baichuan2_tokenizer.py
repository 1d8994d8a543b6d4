"""Baichuan2 tokenizer for MindFormers: the checkpoint's sentencepiece ``tokenizer.model``, wrapped.

Registrable as a MindFormers TOKENIZER through YAML::

    processor:
      tokenizer:
        type: Baichuan2Tokenizer
        auto_register: baichuan2_tokenizer.Baichuan2Tokenizer
        vocab_file: /path/to/Baichuan2-7B-Base/tokenizer.model

Behaviour of the Hub's ``tokenization_baichuan.py`` (remote code) with Baichuan2's ``tokenizer_config.json``: text is
encoded by sentencepiece as is, no ``<s>`` / ``</s>`` added (``add_bos_token`` / ``add_eos_token`` false), ``<unk>``
pads. Ids agree with HF ``LlamaTokenizer(legacy=True)`` with the same switches on the same model file (tested in
``tests/research/baichuan2/test_tokenizer.py``).
"""

from __future__ import annotations

from mf_ext.tokenization import SentencePieceTokenizer, TokenizerFileError

__all__ = ["Baichuan2Tokenizer", "TokenizerFileError"]


class Baichuan2Tokenizer(SentencePieceTokenizer):
    """Sentencepiece tokenizer of baichuan2 checkpoints (``tokenizer.model``)."""

    default_pad_token = "<unk>"
    default_add_bos_token = False
    default_add_eos_token = False
