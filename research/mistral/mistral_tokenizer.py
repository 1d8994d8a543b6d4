"""Mistral tokenizer for MindFormers: HF ``tokenizers`` reading the checkpoint's ``tokenizer.json``.

Mistral's HF repos ship a sentencepiece ``tokenizer.model`` and the equivalent ``tokenizer.json`` (what HF's
``LlamaTokenizerFast`` reads: BPE with byte fallback, the ``▁`` metaspace). This class wraps the ``tokenizer.json``
and adds ``<s>`` (``add_bos_token``) / ``</s>`` (``add_eos_token``) as ``LlamaTokenizerFast`` does, so ids agree
id for id (tests/research/mistral/test_mistral.py). Registrable through YAML::

    processor:
      tokenizer:
        type: MistralTokenizerFast
        auto_register: mistral_tokenizer.MistralTokenizerFast
        vocab_file: /path/to/Mistral-7B-v0.3/tokenizer.json   # or tokenizer.model with tokenizer.json beside it
"""

from __future__ import annotations

import os

from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

from .family import MISTRAL_CHAT_TEMPLATE  # Mistral's [INST] ... [/INST] format, for tokenizers carrying none

__all__ = ["MistralTokenizerFast"]


def _tokenizer_json(vocab_file: str | None, tokenizer_file: str | None) -> str:
    """The ``tokenizer.json`` to read: ``tokenizer_file``, a ``vocab_file`` ending in ``.json``, or the
    ``tokenizer.json`` beside a ``tokenizer.model`` ``vocab_file``."""
    if tokenizer_file is None and vocab_file is not None:
        vocab_file = os.fspath(vocab_file)
        beside = os.path.join(os.path.dirname(vocab_file), "tokenizer.json")
        tokenizer_file = vocab_file if vocab_file.endswith(".json") else beside
    if tokenizer_file is None:
        raise ValueError("MistralTokenizerFast: vocab_file or tokenizer_file: expected a path to tokenizer.json")
    if not os.path.isfile(tokenizer_file):
        raise FileNotFoundError(f"MistralTokenizerFast: {tokenizer_file!r} not found: expected a tokenizer.json")
    return tokenizer_file


class MistralTokenizerFast(PreTrainedTokenizerFast):
    """Mistral (sentencepiece BPE, byte fallback) tokenizer backed by HF ``tokenizers``."""

    vocab_files_names = {"vocab_file": "tokenizer.model", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "left"

    def __init__(
        self,
        vocab_file: str | None = None,
        tokenizer_file: str | None = None,
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        pad_token: str | None = None,
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        clean_up_tokenization_spaces: bool = False,
        chat_template: str | None = None,
        **kwargs,
    ):
        path = _tokenizer_json(vocab_file, tokenizer_file)
        from tokenizers import Tokenizer

        try:
            kwargs["tokenizer_object"] = Tokenizer.from_file(path)
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"MistralTokenizerFast: {path!r} is not a valid tokenizer.json ({e})") from None
        self.vocab_file = vocab_file
        self._add_bos_token = add_bos_token
        self._add_eos_token = add_eos_token
        super().__init__(
            tokenizer_file=None,
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            chat_template=chat_template if chat_template is not None else MISTRAL_CHAT_TEMPLATE,
            add_bos_token=add_bos_token,
            add_eos_token=add_eos_token,
            **kwargs,
        )
        self.update_post_processor()

    @property
    def add_bos_token(self) -> bool:
        return self._add_bos_token

    @add_bos_token.setter
    def add_bos_token(self, value: bool) -> None:
        self._add_bos_token = value
        self.update_post_processor()

    @property
    def add_eos_token(self) -> bool:
        return self._add_eos_token

    @add_eos_token.setter
    def add_eos_token(self, value: bool) -> None:
        self._add_eos_token = value
        self.update_post_processor()

    def update_post_processor(self) -> None:
        """``<s>`` before and/or ``</s>`` after each sequence, as ``add_bos_token`` / ``add_eos_token`` say."""
        from tokenizers import processors

        bos, eos = self.bos_token, self.eos_token
        first = (f"{bos}:0 " if self._add_bos_token else "") + "$A:0" + (f" {eos}:0" if self._add_eos_token else "")
        pair = (
            first
            + (f" {bos}:1" if self._add_bos_token else "")
            + " $B:1"
            + (f" {eos}:1" if self._add_eos_token else "")
        )
        specials = []
        if self._add_bos_token:
            specials.append((bos, self.bos_token_id))
        if self._add_eos_token:
            specials.append((eos, self.eos_token_id))
        self._tokenizer.post_processor = processors.TemplateProcessing(single=first, pair=pair, special_tokens=specials)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write ``tokenizer.json`` into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.json")
        self._tokenizer.save(path)
        return (path,)
