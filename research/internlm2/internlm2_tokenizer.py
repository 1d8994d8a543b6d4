"""InternLM2 / InternLM tokenizer for MindFormers: the checkpoint's sentencepiece ``tokenizer.model``, wrapped.

Registrable as a MindFormers TOKENIZER through YAML::

    processor:
      tokenizer:
        type: InternLM2Tokenizer
        auto_register: internlm2_tokenizer.InternLM2Tokenizer
        vocab_file: /path/to/internlm2-chat-7b/tokenizer.model

Behaviour of the Hub's ``tokenization_internlm2.py`` (remote code): text is encoded by sentencepiece as is (its
``add_dummy_prefix`` decides the leading "▁"), ``<s>`` is prepended (``add_bos_token``) and ``</s>`` appended only with
``add_eos_token``; the special tokens the model file defines (``<|im_start|>`` ...) are pieces of the model and are
matched whole in the text. Ids agree with HF ``LlamaTokenizer(legacy=True)`` on the same model file (tested in
``tests/research/internlm2/test_tokenizer.py``).
"""

from __future__ import annotations

from mf_ext.tokenization import SentencePieceTokenizer, TokenizerFileError

__all__ = ["InternLM2Tokenizer", "TokenizerFileError"]


class InternLM2Tokenizer(SentencePieceTokenizer):
    """Sentencepiece tokenizer of internlm2 checkpoints (``tokenizer.model``)."""

    default_pad_token = "</s>"
    default_add_bos_token = True
    default_add_eos_token = False
