"""Llama 3 / 3.1 tokenizers for MindFormers.

Two classes, registrable as MindFormers TOKENIZER through YAML::

    processor:
      tokenizer:
        type: Llama3Tokenizer                       # or Llama3TokenizerFast
        auto_register: llama3_1_tokenizer.Llama3Tokenizer
        vocab_file: /path/to/tokenizer.model        # Meta's tiktoken BPE file

- ``Llama3Tokenizer`` reads Meta's tiktoken BPE file (one ``<base64 token> <rank>`` per line) and encodes with
  the ``tiktoken`` library, the Llama 3 pre-tokenization regex and the Llama 3.1 special tokens, whose ids follow
  the base vocabulary (``<|begin_of_text|>`` = 128000 for the real model).
- ``Llama3TokenizerFast`` wraps a HF ``tokenizers`` ``tokenizer.json`` (``tokenizer_file``); given only a tiktoken
  ``vocab_file`` it builds the equivalent ``tokenizer.json`` in memory with :func:`tiktoken_to_hf_tokenizer`.

Both agree id-for-id with ``transformers.PreTrainedTokenizerFast`` loading the same ``tokenizer.json`` (tested in
``tests/research/llama3_1/test_tokenizer.py``).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from functools import lru_cache

import tiktoken
from mindformers.models.tokenization_utils import AddedToken, PreTrainedTokenizer
from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

__all__ = [
    "LLAMA3_CHAT_TEMPLATE",
    "LLAMA3_PAT_STR",
    "Llama3Tokenizer",
    "Llama3TokenizerFast",
    "llama3_special_tokens",
    "load_tiktoken_bpe_file",
    "tiktoken_to_hf_tokenizer",
    "write_tiktoken_bpe_file",
]

# Llama 3 pre-tokenizer: contractions, letter runs with one optional leading non-letter, digit groups of 1-3,
# punctuation runs (absorbing trailing newlines), newline runs, and whitespace (a trailing space stays with the
# next word because of `\s+(?!\S)`).
LLAMA3_PAT_STR = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# Llama 3 prompt format (Meta's model card): BOS, then per message a role header, the trimmed content and
# <|eot_id|>; `add_generation_prompt` opens the assistant header.
LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

NUM_RESERVED_SPECIAL_TOKENS = 256


def llama3_special_tokens(num_reserved_special_tokens: int = NUM_RESERVED_SPECIAL_TOKENS) -> list[str]:
    """The Llama 3.1 special tokens in id order (id = base vocab size + index).

    The named ones sit at the positions Meta's Llama 3.1 ``tokenizer.model`` gives them (e.g. ``<|eot_id|>`` is
    the tenth, 128009); the remaining slots are ``<|reserved_special_token_N|>`` numbered on from 3.
    """
    named = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|reserved_special_token_2|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
    ]
    if num_reserved_special_tokens < len(named):
        raise ValueError(
            f"num_reserved_special_tokens={num_reserved_special_tokens!r} is too small: expected >= {len(named)}"
        )
    reserved = [f"<|reserved_special_token_{3 + i}|>" for i in range(num_reserved_special_tokens - len(named))]
    return named + reserved


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """The byte-level alphabet of GPT-2 style BPE: every byte gets a printable, non-space character.

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, ...) are moved, in byte order,
    to code points 256, 257, ... so a token string never contains whitespace or control characters.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    kept = set(keep)
    table = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in kept:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in _byte_to_unicode().items()}


def bytes_to_token_str(token: bytes) -> str:
    """A token's bytes as its byte-level string (the form used in ``tokenizer.json`` vocab and merges)."""
    table = _byte_to_unicode()
    return "".join(table[b] for b in token)


def token_str_to_bytes(token: str) -> bytes:
    """Inverse of :func:`bytes_to_token_str`."""
    table = _unicode_to_byte()
    return bytes(table[c] for c in token)


def load_tiktoken_bpe_file(vocab_file: str | os.PathLike) -> dict[bytes, int]:
    """Read a tiktoken BPE file (``<base64 token> <rank>`` per line) into ``{token bytes: rank}``.

    Stricter than ``tiktoken.load.load_tiktoken_bpe``: a missing file, a malformed line, a duplicate token or a
    rank set that is not exactly ``0..n-1`` is reported in one line naming the file and line number.
    """
    path = os.fspath(vocab_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocab_file {path!r} not found: expected a tiktoken BPE file (tokenizer.model)")
    ranks: dict[bytes, int] = {}
    seen_ranks: set[int] = set()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError("wrong field count")
                token = base64.b64decode(parts[0], validate=True)
                rank = int(parts[1])
                if rank < 0 or not token:
                    raise ValueError("empty token or negative rank")
            except (ValueError, binascii.Error):
                shown = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                raise ValueError(
                    f"{path}:{lineno}: malformed tiktoken BPE line {shown[:80]!r}: expected '<base64 token> <rank>'"
                ) from None
            if token in ranks:
                raise ValueError(f"{path}:{lineno}: token {token!r} appears twice (first with rank {ranks[token]})")
            if rank in seen_ranks:
                raise ValueError(f"{path}:{lineno}: rank {rank} appears twice")
            ranks[token] = rank
            seen_ranks.add(rank)
    if not ranks:
        raise ValueError(f"{path}: empty tiktoken BPE file: expected '<base64 token> <rank>' lines")
    if max(seen_ranks) != len(ranks) - 1:
        missing = min(set(range(len(ranks))) - seen_ranks)
        raise ValueError(f"{path}: ranks must be 0..{len(ranks) - 1} without gaps, rank {missing} is missing")
    missing_bytes = [b for b in range(256) if bytes([b]) not in ranks]
    if missing_bytes:
        raise ValueError(
            f"{path}: byte-level BPE needs all 256 single bytes, {len(missing_bytes)} missing (e.g. {missing_bytes[0]})"
        )
    return ranks


def write_tiktoken_bpe_file(ranks: dict[bytes, int], path: str | os.PathLike) -> str:
    """Write ``{token bytes: rank}`` as a tiktoken BPE file, sorted by rank, atomically (temp file + rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tokenizer.model.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
                f.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def tiktoken_to_hf_tokenizer(
    ranks: dict[bytes, int],
    special_tokens: list[str] | None = None,
    bos_token: str | None = "<|begin_of_text|>",
):
    """Build a HF ``tokenizers.Tokenizer`` equivalent to tiktoken encoding with ``ranks``.

    tiktoken merges, at every step, the adjacent pair whose concatenation has the lowest rank, and takes a whole
    pre-token directly when it is in the vocabulary. The equivalent HF BPE therefore gets one merge per way of
    splitting each multi-byte token into two vocabulary tokens, ordered by the rank of the merged token, and
    ``ignore_merges=True``. Special tokens get ids right after the base vocabulary, in the given order.
    """
    from tokenizers import AddedToken as HFAddedToken
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    special_tokens = llama3_special_tokens() if special_tokens is None else special_tokens
    vocab = {bytes_to_token_str(tok): rank for tok, rank in ranks.items()}
    merges: list[tuple[int, int, int, str, str]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is not None and right_rank is not None:
                merges.append((rank, left_rank, right_rank, bytes_to_token_str(left), bytes_to_token_str(right)))
    merges.sort()
    model = models.BPE(
        vocab=vocab,
        merges=[(m[3], m[4]) for m in merges],
        ignore_merges=True,
        fuse_unk=False,
        byte_fallback=False,
    )
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    added = [HFAddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False) for t in special_tokens]
    tok.add_special_tokens(added)
    if len(tok.get_vocab()) != len(ranks) + len(special_tokens):
        raise ValueError("special tokens collide with base vocabulary tokens")
    steps = [processors.ByteLevel(trim_offsets=False)]
    if bos_token is not None:
        bos_id = tok.token_to_id(bos_token)
        steps.append(
            processors.TemplateProcessing(
                single=f"{bos_token}:0 $A:0",
                pair=f"{bos_token}:0 $A:0 {bos_token}:1 $B:1",
                special_tokens=[(bos_token, bos_id)],
            )
        )
    tok.post_processor = processors.Sequence(steps)
    return tok


def _special_added_tokens(special_tokens: list[str], first_id: int) -> dict[int, AddedToken]:
    return {
        first_id + i: AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False)
        for i, t in enumerate(special_tokens)
    }


class Llama3Tokenizer(PreTrainedTokenizer):
    """Llama 3 / 3.1 tokenizer from Meta's tiktoken BPE file, encoding with ``tiktoken``.

    Args:
        vocab_file: tiktoken BPE file (``tokenizer.model``), ``<base64 token> <rank>`` per line.
        bos_token / eos_token / pad_token: special token strings (pad defaults to none, as in Llama 3).
        add_bos_token: prepend ``<|begin_of_text|>`` when ``add_special_tokens=True`` (as HF's Llama 3).
        add_eos_token: append the eos token when ``add_special_tokens=True``.
        num_reserved_special_tokens: number of special ids after the base vocabulary (256 for Llama 3.x).
        chat_template: Jinja template; defaults to :data:`LLAMA3_CHAT_TEMPLATE`.

    Example::

        tok = Llama3Tokenizer("research/llama3_1/demo/tokenizer.model")
        ids = tok("Hello world")["input_ids"]          # [<|begin_of_text|>, ...]
        text = tok.decode(ids, skip_special_tokens=True)
    """

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        bos_token: str = "<|begin_of_text|>",
        eos_token: str = "<|end_of_text|>",
        pad_token: str | None = None,
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        num_reserved_special_tokens: int = NUM_RESERVED_SPECIAL_TOKENS,
        clean_up_tokenization_spaces: bool = False,
        chat_template: str | None = None,
        **kwargs,
    ):
        self.vocab_file = vocab_file
        self.mergeable_ranks = load_tiktoken_bpe_file(vocab_file)
        self.num_base_tokens = len(self.mergeable_ranks)
        self.special_tokens_list = llama3_special_tokens(num_reserved_special_tokens)
        self.special_tokens = {t: self.num_base_tokens + i for i, t in enumerate(self.special_tokens_list)}
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.model = tiktoken.Encoding(
            name=os.path.basename(vocab_file),
            pat_str=LLAMA3_PAT_STR,
            mergeable_ranks=self.mergeable_ranks,
            special_tokens=self.special_tokens,
        )
        # Base tokens are exposed as byte-level strings (as in tokenizer.json), so get_vocab() matches HF's.
        self.encoder = {bytes_to_token_str(tok): rank for tok, rank in self.mergeable_ranks.items()}
        self.decoder = {rank: tok for tok, rank in self.encoder.items()}
        self.id_to_bytes = {rank: tok for tok, rank in self.mergeable_ranks.items()}
        for token, idx in self.special_tokens.items():
            self.id_to_bytes[idx] = token.encode("utf-8")
        for name, value in (("bos_token", bos_token), ("eos_token", eos_token), ("pad_token", pad_token)):
            content = getattr(value, "content", value)  # from_pretrained passes AddedToken objects
            if content is not None and content not in self.special_tokens:
                raise ValueError(f"{name}={value!r} is not a Llama 3 special token of {vocab_file!r}")
        kwargs.pop("added_tokens_decoder", None)  # ours are fixed by the vocab size; a saved copy adds nothing
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            chat_template=chat_template if chat_template is not None else LLAMA3_CHAT_TEMPLATE,
            added_tokens_decoder=_special_added_tokens(self.special_tokens_list, self.num_base_tokens),
            add_bos_token=add_bos_token,
            add_eos_token=add_eos_token,
            num_reserved_special_tokens=num_reserved_special_tokens,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        """Size of the base (BPE) vocabulary, without the special tokens."""
        return self.num_base_tokens

    def __len__(self) -> int:
        return self.num_base_tokens + len(self.special_tokens_list)

    def get_vocab(self) -> dict[str, int]:
        """All tokens (byte-level strings and special tokens) to ids."""
        vocab = dict(self.encoder)
        vocab.update(self.special_tokens)
        return vocab

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        # Special tokens were already split off by the base class; everything left is ordinary text.
        return [self.decoder[i] for i in self.model.encode_ordinary(text)]

    def _convert_token_to_id(self, token: str) -> int | None:
        idx = self.encoder.get(token)
        return idx if idx is not None else self.special_tokens.get(token)

    def _convert_id_to_token(self, index: int) -> str:
        token = self.decoder.get(index)
        if token is None and 0 <= index - self.num_base_tokens < len(self.special_tokens_list):
            token = self.special_tokens_list[index - self.num_base_tokens]
        if token is not None:
            return token
        raise IndexError(f"token id {index!r} out of range: vocabulary has {len(self)} tokens")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join byte-level token strings back into text (invalid UTF-8 becomes U+FFFD, as HF's ByteLevel decoder)."""
        out = bytearray()
        for token in tokens:
            if token in self.special_tokens:
                out += token.encode("utf-8")
            else:
                out += token_str_to_bytes(token)
        return out.decode("utf-8", errors="replace")

    def _decode(
        self,
        token_ids: list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs,
    ) -> str:
        # Decode all bytes at once: a multi-byte character split over two tokens must come back whole, and special
        # tokens are written without the spaces the generic slow decoder would insert (HF fast behaviour).
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        out = bytearray()
        for idx in token_ids:
            idx = int(idx)
            if skip_special_tokens and idx >= self.num_base_tokens:
                continue
            piece = self.id_to_bytes.get(idx)
            if piece is None:
                raise IndexError(f"token id {idx!r} out of range: vocabulary has {len(self)} tokens")
            out += piece
        text = out.decode("utf-8", errors="replace")
        cleanup = (
            self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        )
        return self.clean_up_tokenization(text) if cleanup else text

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        """Add ``<|begin_of_text|>`` (and eos if ``add_eos_token``) around each sequence, as HF's Llama 3."""
        bos = [self.bos_token_id] if self.add_bos_token and self.bos_token_id is not None else []
        eos = [self.eos_token_id] if self.add_eos_token and self.eos_token_id is not None else []
        out = bos + token_ids_0 + eos
        if token_ids_1 is not None:
            out = out + bos + token_ids_1 + eos
        return out

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        if already_has_special_tokens:
            return [1 if t >= self.num_base_tokens else 0 for t in token_ids_0]
        bos = [1] if self.add_bos_token else []
        eos = [1] if self.add_eos_token else []
        mask = bos + [0] * len(token_ids_0) + eos
        if token_ids_1 is not None:
            mask += bos + [0] * len(token_ids_1) + eos
        return mask

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write the BPE ranks as ``tokenizer.model`` (tiktoken format) into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        name = (filename_prefix + "-" if filename_prefix else "") + self.vocab_files_names["vocab_file"]
        return (write_tiktoken_bpe_file(self.mergeable_ranks, os.path.join(save_directory, name)),)


class Llama3TokenizerFast(PreTrainedTokenizerFast):
    """Llama 3 / 3.1 tokenizer backed by HF ``tokenizers``.

    Built from ``tokenizer_file`` (a ``tokenizer.json``), or, if only ``vocab_file`` (tiktoken BPE file) is
    given, from the equivalent ``tokenizer.json`` made in memory by :func:`tiktoken_to_hf_tokenizer`.
    A ``vocab_file`` ending in ``.json`` is taken as the ``tokenizer_file`` (MindFormers' ``build_tokenizer``
    requires a ``vocab_file`` key in the YAML).
    """

    vocab_files_names = {"vocab_file": "tokenizer.model", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = Llama3Tokenizer

    def __init__(
        self,
        vocab_file: str | None = None,
        tokenizer_file: str | None = None,
        bos_token: str = "<|begin_of_text|>",
        eos_token: str = "<|end_of_text|>",
        pad_token: str | None = None,
        add_bos_token: bool = True,
        num_reserved_special_tokens: int = NUM_RESERVED_SPECIAL_TOKENS,
        clean_up_tokenization_spaces: bool = False,
        chat_template: str | None = None,
        **kwargs,
    ):
        if tokenizer_file is None and vocab_file is not None and os.fspath(vocab_file).endswith(".json"):
            # MindFormers' build_tokenizer insists on a `vocab_file` key; let it name the tokenizer.json too.
            tokenizer_file, vocab_file = vocab_file, None
        if tokenizer_file is not None:
            if not os.path.isfile(tokenizer_file):
                raise FileNotFoundError(f"tokenizer_file {tokenizer_file!r} not found: expected a tokenizer.json")
            try:
                from tokenizers import Tokenizer

                kwargs["tokenizer_object"] = Tokenizer.from_file(tokenizer_file)
            except Exception as e:  # tokenizers raises a bare Exception on bad JSON
                raise ValueError(f"tokenizer_file {tokenizer_file!r} is not a valid tokenizer.json: {e}") from None
        elif vocab_file is not None:
            ranks = load_tiktoken_bpe_file(vocab_file)
            specials = llama3_special_tokens(num_reserved_special_tokens)
            kwargs["tokenizer_object"] = tiktoken_to_hf_tokenizer(
                ranks, specials, bos_token=bos_token if add_bos_token else None
            )
        else:
            raise ValueError("Llama3TokenizerFast needs tokenizer_file (tokenizer.json) or vocab_file (tiktoken BPE)")
        self.vocab_file = vocab_file
        self.add_bos_token = add_bos_token
        super().__init__(
            tokenizer_file=None,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            chat_template=chat_template if chat_template is not None else LLAMA3_CHAT_TEMPLATE,
            add_bos_token=add_bos_token,
            num_reserved_special_tokens=num_reserved_special_tokens,
            **kwargs,
        )

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write ``tokenizer.json`` into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        name = (filename_prefix + "-" if filename_prefix else "") + "tokenizer.json"
        path = os.path.join(save_directory, name)
        self._tokenizer.save(path)
        return (path,)
