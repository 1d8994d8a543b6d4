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

import os
import shutil
from typing import Any

import sentencepiece as spm
from mindformers.models.tokenization_utils import AddedToken, PreTrainedTokenizer

from mf_ext.errors import MfExtError

__all__ = ["InternLM2Tokenizer"]

SPIECE_UNDERLINE = "▁"


class TokenizerFileError(MfExtError, ValueError):
    """A tokenizer file that is missing or not a sentencepiece model."""


def _load(vocab_file: str, sp_model_kwargs: dict) -> spm.SentencePieceProcessor:
    if not vocab_file or not os.path.isfile(vocab_file):
        raise TokenizerFileError(f"InternLM2Tokenizer: vocab_file {vocab_file!r} is not a file (expected the "
                                 "checkpoint's sentencepiece tokenizer.model)")  # fmt: skip
    sp = spm.SentencePieceProcessor(**sp_model_kwargs)
    try:
        sp.Load(vocab_file)
    except (OSError, RuntimeError) as exc:
        raise TokenizerFileError(f"InternLM2Tokenizer: {vocab_file!r} is not a sentencepiece model ({exc})") from None
    return sp


class InternLM2Tokenizer(PreTrainedTokenizer):
    """Sentencepiece tokenizer of InternLM2 / InternLM checkpoints (``tokenizer.model``)."""

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]
    FILE_LIST = ["tokenizer_config.json"]

    def __init__(
        self,
        vocab_file: str,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str = "</s>",
        sp_model_kwargs: dict[str, Any] | None = None,
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        clean_up_tokenization_spaces: bool = False,
        **kwargs: Any,
    ):
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.vocab_file = vocab_file
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.sp_model = _load(vocab_file, self.sp_model_kwargs)
        specials = {"unk_token": unk_token, "bos_token": bos_token, "eos_token": eos_token, "pad_token": pad_token}
        specials = {
            k: AddedToken(v, lstrip=False, rstrip=False) if isinstance(v, str) else v for k, v in specials.items()
        }
        super().__init__(**specials, clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["sp_model"] = None
        return state

    def __setstate__(self, state):
        self.__dict__ = state
        self.sp_model = _load(self.vocab_file, self.sp_model_kwargs)

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.sp_model.id_to_piece(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self.sp_model.id_to_piece(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Pieces -> text: runs of ordinary pieces through sentencepiece, special tokens verbatim."""
        out, run = [], []
        specials = set(self.all_special_tokens)
        for token in tokens:
            if token in specials:
                out.append(self.sp_model.decode(run))
                out.append(token)
                run = []
            else:
                run.append(token)
        out.append(self.sp_model.decode(run))
        return "".join(out)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        out = bos + token_ids_0 + eos
        if token_ids_1 is not None:
            out = out + bos + token_ids_1 + eos
        return out

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        bos = [1] if self.add_bos_token else []
        eos = [1] if self.add_eos_token else []
        out = bos + [0] * len(token_ids_0) + eos
        if token_ids_1 is not None:
            out = out + bos + [0] * len(token_ids_1) + eos
        return out

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise TokenizerFileError(f"InternLM2Tokenizer.save_vocabulary: {save_directory!r} is not a directory")
        out = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        if os.path.abspath(self.vocab_file) != os.path.abspath(out):
            shutil.copyfile(self.vocab_file, out)
        return (out,)
