"""GPT2 byte-level BPE tokenizer for MindFormers, backed by HF ``tokenizers``.

Reads a ``tokenizer.json``, or GPT2's original pair ``vocab.json`` + ``merges.txt`` (built into the same byte-level
BPE pipeline HF's ``GPT2TokenizerFast`` builds: ByteLevel pre-tokenizer without a prefix space, BPE, ByteLevel
decoder). No special tokens are added around the text (GPT2's convention). Registrable through YAML::

    processor:
      tokenizer:
        type: GPT2BPETokenizerFast
        auto_register: gpt2_tokenizer.GPT2BPETokenizerFast
        vocab_file: /path/to/gpt2/tokenizer.json      # or vocab.json, with merges.txt beside it
"""

from __future__ import annotations

import os

from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

__all__ = ["GPT2BPETokenizerFast", "byte_level_bpe"]


def byte_level_bpe(vocab_file: str, merges_file: str):
    """A ``tokenizers.Tokenizer`` for GPT2's ``vocab.json`` + ``merges.txt``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.BPE.from_file(vocab_file, merges_file))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _load(vocab_file: str | None, merges_file: str | None, tokenizer_file: str | None):
    from tokenizers import Tokenizer

    if tokenizer_file is None and vocab_file is not None and os.fspath(vocab_file).endswith("tokenizer.json"):
        tokenizer_file, vocab_file = os.fspath(vocab_file), None
    if tokenizer_file is not None:
        if not os.path.isfile(tokenizer_file):
            raise FileNotFoundError(f"GPT2BPETokenizerFast: {tokenizer_file!r} not found: expected a tokenizer.json")
        try:
            return Tokenizer.from_file(tokenizer_file)
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"GPT2BPETokenizerFast: {tokenizer_file!r} is not a valid tokenizer.json ({e})") from None
    if vocab_file is None:
        raise ValueError("GPT2BPETokenizerFast: vocab_file: expected tokenizer.json or vocab.json (+ merges.txt)")
    vocab_file = os.fspath(vocab_file)
    merges_file = merges_file or os.path.join(os.path.dirname(vocab_file), "merges.txt")
    for path, what in ((vocab_file, "vocab.json"), (merges_file, "merges.txt")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"GPT2BPETokenizerFast: {path!r} not found: expected GPT2's {what}")
    try:
        return byte_level_bpe(vocab_file, merges_file)
    except Exception as e:
        raise ValueError(
            f"GPT2BPETokenizerFast: {vocab_file!r} / {merges_file!r}: not a GPT2 BPE vocabulary ({e})"
        ) from None


class GPT2BPETokenizerFast(PreTrainedTokenizerFast):
    """GPT2 tokenizer (byte-level BPE); ``<|endoftext|>`` is bos, eos and unk."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        merges_file: str | None = None,
        tokenizer_file: str | None = None,
        unk_token: str = "<|endoftext|>",
        bos_token: str = "<|endoftext|>",
        eos_token: str = "<|endoftext|>",
        pad_token: str | None = None,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        kwargs["tokenizer_object"] = _load(vocab_file, merges_file, tokenizer_file)
        self.vocab_file = vocab_file
        self.merges_file = merges_file
        super().__init__(
            tokenizer_file=None,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write ``tokenizer.json`` into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.json")
        self._tokenizer.save(path)
        return (path,)
