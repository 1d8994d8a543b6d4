"""GLM-4 tokenizers for MindFormers (byte-level BPE, tiktoken-style ranks).

Two classes, registrable as MindFormers TOKENIZER through YAML::

    processor:
      tokenizer:
        type: Glm4TokenizerFast                     # or Glm4Tokenizer (THUDM's tokenizer.model)
        auto_register: glm4_tokenizer.Glm4TokenizerFast
        vocab_file: /path/to/glm-4-9b-chat-hf/tokenizer.json

- ``Glm4Tokenizer`` reads THUDM's ``tokenizer.model`` of ``glm-4-9b(-chat)`` (one ``<base64 token> <rank>`` per
  line) and encodes with ``tiktoken``, GLM-4's pre-tokenization regex and its 14 special tokens, whose ids follow
  the base vocabulary (``<|endoftext|>`` = 151329 for the real model).
- ``Glm4TokenizerFast`` wraps the HF ``tokenizers`` ``tokenizer.json`` of the ``-hf`` repositories.

Both prefix ``[gMASK]<sop>`` when ``add_special_tokens=True``, as GLM-4 does. ChatGLM2/3's sentencepiece tokenizer is
not served here (MindFormers' ``ChatGLM3Tokenizer`` reads it).
"""

from __future__ import annotations

import base64
import binascii
import os

import tiktoken
from mindformers.models.tokenization_utils import AddedToken, PreTrainedTokenizer
from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

from mf_ext.tokenization import bytes_to_unicode

__all__ = ["GLM4_PAT_STR", "GLM4_SPECIAL_TOKENS", "Glm4Tokenizer", "Glm4TokenizerFast", "load_ranks"]

# contractions, letter runs with one optional leading non-letter, digit groups of 1-3, punctuation runs (with
# trailing newlines), newline runs, whitespace (a trailing space stays with the next word)
GLM4_PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
GLM4_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
)
PREFIX = ("[gMASK]", "<sop>")


_BYTE_TO_CHAR = bytes_to_unicode()  # the byte-level token spelling of tokenizer.json
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def load_ranks(vocab_file: str | os.PathLike) -> dict[bytes, int]:
    """THUDM's ``tokenizer.model`` -> ``{token bytes: rank}``; a bad line is one error naming the file and line."""
    path = os.fspath(vocab_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocab_file {path!r} not found: expected GLM-4's tokenizer.model (tiktoken BPE)")
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            parts = raw.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
            except (ValueError, binascii.Error):
                raise ValueError(
                    f"{path}:{lineno}: malformed line {raw[:60]!r}: expected '<base64 token> <rank>'"
                ) from None
            ranks[token] = rank
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: ranks must be 0..{len(ranks) - 1}, each once")
    return ranks


class Glm4Tokenizer(PreTrainedTokenizer):
    """GLM-4 tokenizer from THUDM's tiktoken ``tokenizer.model``, encoding with ``tiktoken``.

    Args:
        vocab_file: ``tokenizer.model`` (``<base64 token> <rank>`` per line).
        eos_token / pad_token: special token strings (both ``<|endoftext|>`` by default).
        add_prefix_tokens: prepend ``[gMASK]<sop>`` when ``add_special_tokens=True``.
    """

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        eos_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        add_prefix_tokens: bool = True,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        self.vocab_file = vocab_file
        self.ranks = load_ranks(vocab_file)
        self.num_base_tokens = len(self.ranks)
        self.special_ids = {t: self.num_base_tokens + i for i, t in enumerate(GLM4_SPECIAL_TOKENS)}
        self.add_prefix_tokens = add_prefix_tokens
        self.model = tiktoken.Encoding(
            name=os.path.basename(vocab_file), pat_str=GLM4_PAT_STR, mergeable_ranks=self.ranks, special_tokens={}
        )
        self.encoder = {"".join(_BYTE_TO_CHAR[b] for b in tok): rank for tok, rank in self.ranks.items()}
        self.decoder = {rank: tok for tok, rank in self.encoder.items()}
        self.id_to_bytes = {rank: tok for tok, rank in self.ranks.items()}
        self.id_to_bytes.update({i: t.encode() for t, i in self.special_ids.items()})
        for name, value in (("eos_token", eos_token), ("pad_token", pad_token)):
            if getattr(value, "content", value) not in self.special_ids:
                raise ValueError(
                    f"{name}={value!r} is not a GLM-4 special token; expected one of {GLM4_SPECIAL_TOKENS}"
                )
        kwargs.pop("added_tokens_decoder", None)  # fixed by the vocabulary size
        added = {
            i: AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False)
            for t, i in self.special_ids.items()
        }
        super().__init__(
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            added_tokens_decoder=added,
            add_prefix_tokens=add_prefix_tokens,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        """Size of the base (BPE) vocabulary, without the special tokens."""
        return self.num_base_tokens

    def __len__(self) -> int:
        return self.num_base_tokens + len(GLM4_SPECIAL_TOKENS)

    def get_vocab(self) -> dict[str, int]:
        return {**self.encoder, **self.special_ids}

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return [self.decoder[i] for i in self.model.encode_ordinary(text)]

    def _convert_token_to_id(self, token: str) -> int | None:
        idx = self.encoder.get(token)
        return idx if idx is not None else self.special_ids.get(token)

    def _convert_id_to_token(self, index: int) -> str:
        token = self.decoder.get(index)
        if token is None and 0 <= index - self.num_base_tokens < len(GLM4_SPECIAL_TOKENS):
            token = GLM4_SPECIAL_TOKENS[index - self.num_base_tokens]
        if token is None:
            raise IndexError(f"token id {index!r} out of range: vocabulary has {len(self)} tokens")
        return token

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        out = bytearray()
        for token in tokens:
            out += token.encode() if token in self.special_ids else bytes(_CHAR_TO_BYTE[c] for c in token)
        return out.decode("utf-8", errors="replace")

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs):
        # all bytes at once: a character split over two tokens comes back whole (HF's ByteLevel decoder does so)
        ids = [token_ids] if isinstance(token_ids, int) else token_ids
        out = bytearray()
        for idx in map(int, ids):
            if skip_special_tokens and idx >= self.num_base_tokens:
                continue
            if idx not in self.id_to_bytes:
                raise IndexError(f"token id {idx!r} out of range: vocabulary has {len(self)} tokens")
            out += self.id_to_bytes[idx]
        return out.decode("utf-8", errors="replace")

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> list[int]:
        """``[gMASK] <sop> A`` (and ``B <eos>`` for a pair), as GLM-4's tokenizer."""
        prefix = [self.special_ids[t] for t in PREFIX] if self.add_prefix_tokens else []
        out = prefix + list(token_ids_0)
        if token_ids_1 is not None:
            out = out + list(token_ids_1) + [self.eos_token_id]
        return out

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False) -> list[int]:
        if already_has_special_tokens:
            return [1 if t >= self.num_base_tokens else 0 for t in token_ids_0]
        mask = [1] * (len(PREFIX) if self.add_prefix_tokens else 0) + [0] * len(token_ids_0)
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write the ranks as ``tokenizer.model`` into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        with open(path, "wb") as f:
            for token, rank in sorted(self.ranks.items(), key=lambda kv: kv[1]):
                f.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
        return (path,)


class Glm4TokenizerFast(PreTrainedTokenizerFast):
    """GLM-4 tokenizer backed by HF ``tokenizers``: the ``tokenizer.json`` of the ``glm-4-*-hf`` repositories.

    ``tokenizer_file`` names it; a ``vocab_file`` ending in ``.json`` is taken as the ``tokenizer_file``
    (MindFormers' ``build_tokenizer`` requires a ``vocab_file`` key).
    """

    vocab_files_names = {"tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        tokenizer_file: str | None = None,
        eos_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        if tokenizer_file is None and vocab_file is not None and os.fspath(vocab_file).endswith(".json"):
            tokenizer_file = vocab_file
        if tokenizer_file is None:
            raise ValueError(
                "Glm4TokenizerFast needs tokenizer_file (tokenizer.json); for tokenizer.model use Glm4Tokenizer"
            )
        if not os.path.isfile(tokenizer_file):
            raise FileNotFoundError(f"tokenizer_file {tokenizer_file!r} not found: expected a tokenizer.json")
        try:
            from tokenizers import Tokenizer

            kwargs["tokenizer_object"] = Tokenizer.from_file(os.fspath(tokenizer_file))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"tokenizer_file {tokenizer_file!r} is not a valid tokenizer.json: {e}") from None
        super().__init__(
            tokenizer_file=None,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.json")
        self._tokenizer.save(path)
        return (path,)
