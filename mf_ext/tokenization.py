"""Byte-level BPE tokenizers (vocab.json + merges.txt, or a ``tokenizers`` tokenizer.json) and a sentencepiece
tokenizer (``tokenizer.model``), family-neutral.

The scheme GPT-2 introduced and many families reuse: text is split by a pre-tokenization regex, each piece's UTF-8
bytes are mapped to printable characters (:func:`bytes_to_unicode`), and BPE merges them by rank. A family supplies
only what differs -- its regex, its Unicode normalisation, its special tokens and their defaults -- by subclassing::

    class MyTokenizer(ByteLevelBPETokenizer):          # MindFormers slow tokenizer (pure Python + ``regex``)
        pattern = r"..."                               # pre-tokenization regex
        normalization = "NFC"                          # or None
        special_tokens = ("<|endoftext|>", ...)        # ids follow the base vocabulary, in this order

    class MyTokenizerFast(ByteLevelBPETokenizerFast):  # same tokens, backed by HF ``tokenizers``
        pattern, normalization, special_tokens = MyTokenizer.pattern, ...

Special-token ids: a ``tokenizer_config.json`` beside ``vocab_file`` (an HF checkpoint folder) that lists
``added_tokens_decoder`` wins; otherwise the class's ``special_tokens`` take the ids after the base vocabulary.

Sentencepiece checkpoints (Llama-1/2 style ``tokenizer.model``): subclass :class:`SentencePieceTokenizer` and set its
defaults (``default_pad_token``, ``default_add_bos_token``, ``default_add_eos_token``).
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from functools import lru_cache
from pathlib import Path

import regex
from mindformers.models.tokenization_utils import AddedToken, PreTrainedTokenizer
from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

from mf_ext.errors import MfExtError

__all__ = [
    "ByteLevelBPE",
    "ByteLevelBPETokenizer",
    "ByteLevelBPETokenizerFast",
    "SentencePieceTokenizer",
    "TokenizerFileError",
    "build_tokenizer_object",
    "bytes_to_unicode",
    "read_added_tokens",
    "read_vocab_merges",
]


class TokenizerFileError(MfExtError, ValueError):
    """A vocabulary/merges/tokenizer file that cannot be used (one line naming the file and what was expected)."""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Byte -> printable character: printable Latin-1 bytes map to themselves, the other 68 bytes (controls, space,
    ...) to code points from U+0100 on, in byte order -- the alphabet of byte-level BPE vocabularies."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), ord("\xff") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_vocab_merges(vocab_file, merges_file) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``vocab.json`` (token -> id) and ``merges.txt`` (one ``a b`` pair per line, rank = line order; an optional
    ``#version`` first line)."""
    for key, path, name in (("vocab_file", vocab_file, "vocab.json"), ("merges_file", merges_file, "merges.txt")):
        if not path:
            raise TokenizerFileError(f"{key}: not set (expected the path of the model's {name})")
        if not Path(path).is_file():
            raise TokenizerFileError(f"{key} {str(path)!r}: no such file (expected the model's {name})")
    try:
        vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerFileError(f"vocab_file {str(vocab_file)!r}: expected a JSON token -> id map ({exc})") from None
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise TokenizerFileError(f"vocab_file {str(vocab_file)!r}: expected a JSON object of token -> int id")
    try:
        lines = Path(merges_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TokenizerFileError(f"merges_file {str(merges_file)!r}: cannot be read ({exc})") from None
    merges = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line or (i == 0 and line.startswith("#version")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerFileError(
                f"merges_file {str(merges_file)!r} line {i + 1}: expected two tokens, got {line!r}"
            )
        merges.append((parts[0], parts[1]))
    return vocab, merges


def read_tokenizer_config(folder) -> dict:
    """``folder/tokenizer_config.json`` (an HF checkpoint folder) as a dict, ``{}`` when there is none."""
    path = Path(folder) / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerFileError(f"{str(path)!r}: expected a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise TokenizerFileError(f"{str(path)!r}: expected a JSON object, got {type(data).__name__}")
    return data


def read_added_tokens(folder) -> dict[int, AddedToken]:
    """``added_tokens_decoder`` of ``folder/tokenizer_config.json`` (an HF checkpoint folder), or ``{}``."""
    entries = read_tokenizer_config(folder).get("added_tokens_decoder") or {}
    out = {}
    for tid, entry in entries.items():
        if not str(tid).isdigit() or not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise TokenizerFileError(
                f"{str(Path(folder) / 'tokenizer_config.json')!r}: added_tokens_decoder[{tid!r}]: "
                "expected {'content': str, ...}"
            )
        out[int(tid)] = AddedToken(
            entry["content"],
            single_word=bool(entry.get("single_word", False)),
            lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)),
            normalized=bool(entry.get("normalized", False)),
            special=bool(entry.get("special", True)),
        )
    return out


class ByteLevelBPE:
    """Pure-Python byte-level BPE: ``tokenize(text) -> token strings`` (no special tokens, no normalisation)."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], pattern: str):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.pattern = regex.compile(pattern)
        self.byte_map = bytes_to_unicode()
        self._cache: dict[str, tuple[str, ...]] = {}

    def merge(self, piece: str) -> tuple[str, ...]:
        """BPE of one pre-tokenized piece (already byte-mapped): repeatedly merge the adjacent pair of lowest rank."""
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        parts = list(piece)
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                rank = self.ranks.get((parts[i], parts[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = (parts[i], parts[i + 1]), rank
            if best is None:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        out = tuple(parts)
        if len(self._cache) < 100_000:
            self._cache[piece] = out
        return out

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for piece in self.pattern.findall(text):
            mapped = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
            tokens.extend(self.merge(mapped))
        return tokens


def _token_bytes(token: str) -> bytes:
    decode = _byte_decoder()
    return bytes(decode[c] for c in token)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _special(token: str) -> AddedToken:
    return AddedToken(token, lstrip=False, rstrip=False, single_word=False, normalized=False, special=True)


_TOKEN_ATTRS = ("unk_token", "bos_token", "eos_token", "pad_token")


def _content(value):
    if isinstance(value, dict):  # {"content": "<|im_end|>", ...} in tokenizer_config.json
        value = value.get("content")
    return getattr(value, "content", value)


def _settings(cls, vocab: dict[str, int], folder, given: dict) -> dict:
    """Special tokens and added-token ids: given arguments, else the folder's tokenizer_config.json, else the
    class's defaults (``special_tokens`` after the base vocabulary)."""
    cfg = read_tokenizer_config(folder) if folder is not None else {}
    added = given.get("added_tokens_decoder") or (read_added_tokens(folder) if cfg else {})
    if not added:
        first = max(vocab.values(), default=-1) + 1
        added, n = {}, 0
        for token in cls.special_tokens:
            if token in vocab:
                added[vocab[token]] = _special(token)
            else:
                added[first + n] = _special(token)
                n += 1
    out = {"added_tokens_decoder": added}
    for attr in _TOKEN_ATTRS:
        value = given.get(attr)
        if value is None:
            value = cfg[attr] if attr in cfg else getattr(cls, "default_" + attr)
        value = _content(value)
        out[attr] = _special(value) if isinstance(value, str) else None
    extra = given.get("additional_special_tokens")
    if extra is None:
        if "additional_special_tokens" in cfg:
            extra = [_content(t) for t in cfg["additional_special_tokens"] or []]
        else:
            named = {_content(out[a]) for a in _TOKEN_ATTRS}
            extra = [t for t in cls.special_tokens if t not in named]
    out["additional_special_tokens"] = list(extra)
    template = given.get("chat_template") or cfg.get("chat_template") or cls.default_chat_template
    if template is not None:
        out["chat_template"] = template
    return out


class ByteLevelBPETokenizer(PreTrainedTokenizer):
    """MindFormers slow tokenizer for byte-level BPE (``vocab.json`` + ``merges.txt``); see the module docstring.

    Args:
        vocab_file / merges_file: the HF checkpoint's files.
        errors: how invalid UTF-8 is decoded (``"replace"``, as HF).
        unk_token / bos_token / eos_token / pad_token: special token strings (class defaults ``default_*``).
        added_tokens_decoder: id -> token; default: ``tokenizer_config.json`` beside ``vocab_file``, else the
            class's ``special_tokens`` after the base vocabulary.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    model_input_names = ["input_ids", "attention_mask"]
    pattern: str = ""  # a subclass sets its pre-tokenization regex
    normalization: str | None = None
    special_tokens: tuple[str, ...] = ()
    default_unk_token: str | None = None
    default_bos_token: str | None = None
    default_eos_token: str | None = None
    default_pad_token: str | None = None
    default_chat_template: str | None = None

    def __init__(
        self,
        vocab_file,
        merges_file,
        errors: str = "replace",
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        **kwargs,
    ):
        if not self.pattern:
            raise TokenizerFileError(f"{type(self).__name__}: the class sets no pre-tokenization pattern")
        self.vocab_file, self.merges_file = str(vocab_file), str(merges_file)
        vocab, merges = read_vocab_merges(vocab_file, merges_file)
        self.bpe = ByteLevelBPE(vocab, merges, self.pattern)
        self.encoder = vocab
        self.decoder = {i: t for t, i in vocab.items()}
        self.errors = errors
        given = dict(kwargs, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token, pad_token=pad_token)
        for key in ("added_tokens_decoder", "additional_special_tokens", "chat_template"):
            kwargs.pop(key, None)
        kwargs.pop("add_prefix_space", None)  # byte-level BPE of this kind never adds one
        super().__init__(
            errors=errors,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            split_special_tokens=split_special_tokens,
            **_settings(type(self), vocab, Path(vocab_file).parent, given),
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        """Size of the base (BPE) vocabulary, without added tokens."""
        return len(self.encoder)

    def get_vocab(self) -> dict[str, int]:
        return {**self.encoder, **self.added_tokens_encoder}

    def prepare_for_tokenization(self, text, is_split_into_words=False, **kwargs):
        if self.normalization:
            text = unicodedata.normalize(self.normalization, text)
        return text, kwargs

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self.bpe.tokenize(text)

    def _convert_token_to_id(self, token: str):
        idx = self.encoder.get(token)
        return idx if idx is not None else self.encoder.get(self.unk_token)

    def _convert_id_to_token(self, index: int) -> str | None:
        return self.decoder.get(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return b"".join(_token_bytes(t) for t in tokens).decode("utf-8", errors=self.errors)

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs) -> str:
        # Bytes of consecutive BPE tokens are decoded together (a character split over two tokens comes back whole);
        # added tokens are written as they are, with no spaces around them.
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        special = set(self.all_special_ids) if skip_special_tokens else set()
        added = self.added_tokens_decoder
        pieces, run = [], bytearray()
        for idx in (int(i) for i in token_ids):
            if idx in special:
                continue
            if idx in added:
                pieces.append(run.decode("utf-8", errors=self.errors))
                run = bytearray()
                pieces.append(added[idx].content)
                continue
            token = self.decoder.get(idx)
            if token is None:
                raise IndexError(f"token id {idx!r} out of range: vocabulary has {len(self)} tokens")
            run += _token_bytes(token)
        pieces.append(run.decode("utf-8", errors=self.errors))
        text = "".join(pieces)
        cleanup = (
            self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        )
        return self.clean_up_tokenization(text) if cleanup else text

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, str]:
        """Write ``vocab.json`` and ``merges.txt`` into ``save_directory``."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        prefix = filename_prefix + "-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + self.vocab_files_names["vocab_file"])
        merges_path = os.path.join(save_directory, prefix + self.vocab_files_names["merges_file"])
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.encoder, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        merges = sorted(self.bpe.ranks.items(), key=lambda kv: kv[1])
        with open(merges_path, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            f.writelines(f"{a} {b}\n" for (a, b), _ in merges)
        return vocab_path, merges_path


def build_tokenizer_object(
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    pattern: str,
    normalization: str | None,
    added: dict[int, AddedToken],
):
    """A ``tokenizers.Tokenizer`` equivalent to :class:`ByteLevelBPETokenizer` with the same files: BPE model, the
    normalisation, the regex split followed by the byte mapping, byte-level decoding; ``added`` tokens at their ids
    (they must follow the base vocabulary without gaps)."""
    from tokenizers import AddedToken as TkAddedToken
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    if normalization:
        tk.normalizer = getattr(normalizers, normalization)()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    for idx in sorted(added):
        tok = added[idx]
        if idx in vocab.values():
            continue
        if idx != tk.get_vocab_size(with_added_tokens=True):
            raise TokenizerFileError(
                f"added token {tok.content!r} has id {idx}: expected ids following the base vocabulary without gaps"
            )
        spec = TkAddedToken(
            tok.content, single_word=tok.single_word, lstrip=tok.lstrip, rstrip=tok.rstrip,
            normalized=tok.normalized, special=tok.special,
        )  # fmt: skip
        (tk.add_special_tokens if tok.special else tk.add_tokens)([spec])
    return tk


class ByteLevelBPETokenizerFast(PreTrainedTokenizerFast):
    """Fast (HF ``tokenizers``) twin of :class:`ByteLevelBPETokenizer`: reads a ``tokenizer.json``
    (``tokenizer_file``), or builds the equivalent one from ``vocab_file`` + ``merges_file`` with the class's
    ``pattern``, ``normalization`` and special tokens."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = None
    pattern: str = ByteLevelBPETokenizer.pattern
    normalization: str | None = None
    special_tokens: tuple[str, ...] = ()
    default_unk_token: str | None = None
    default_bos_token: str | None = None
    default_eos_token: str | None = None
    default_pad_token: str | None = None
    default_chat_template: str | None = None

    def __init__(
        self,
        vocab_file=None,
        merges_file=None,
        tokenizer_file=None,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        given = dict(kwargs, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token, pad_token=pad_token)
        for key in ("added_tokens_decoder", "additional_special_tokens", "chat_template", "add_prefix_space"):
            kwargs.pop(key, None)
        if tokenizer_file is None and "tokenizer_object" not in kwargs:
            if not vocab_file or not merges_file:
                raise TokenizerFileError(
                    f"{type(self).__name__}: expected tokenizer_file, or vocab_file and merges_file"
                )
            vocab, merges = read_vocab_merges(vocab_file, merges_file)
            settings = _settings(type(self), vocab, Path(vocab_file).parent, given)
            added = settings["added_tokens_decoder"]
            kwargs["tokenizer_object"] = build_tokenizer_object(vocab, merges, self.pattern, self.normalization, added)
        else:
            if tokenizer_file is not None and not Path(tokenizer_file).is_file():
                raise TokenizerFileError(f"tokenizer_file {str(tokenizer_file)!r} does not exist")
            folder = Path(tokenizer_file).parent if tokenizer_file is not None else None
            settings = _settings(type(self), {}, folder, given)
            settings["added_tokens_decoder"] = given.get("added_tokens_decoder") or {}
        super().__init__(
            vocab_file=vocab_file,
            merges_file=merges_file,
            tokenizer_file=tokenizer_file,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **settings,
            **kwargs,
        )

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the BPE model's ``vocab.json`` and ``merges.txt`` into ``save_directory`` (``tokenizer.json`` is
        written by ``save_pretrained`` itself)."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        return tuple(self._tokenizer.model.save(save_directory, filename_prefix))


def _load_sentencepiece(owner: str, vocab_file, sp_model_kwargs: dict):
    import sentencepiece as spm

    if not vocab_file or not os.path.isfile(vocab_file):
        raise TokenizerFileError(f"{owner}: vocab_file {vocab_file!r} is not a file (expected the "
                                 "checkpoint's sentencepiece tokenizer.model)")  # fmt: skip
    sp = spm.SentencePieceProcessor(**sp_model_kwargs)
    try:
        sp.Load(str(vocab_file))
    except (OSError, RuntimeError) as exc:
        raise TokenizerFileError(f"{owner}: {vocab_file!r} is not a sentencepiece model ({exc})") from None
    return sp


class SentencePieceTokenizer(PreTrainedTokenizer):
    """A checkpoint's sentencepiece ``tokenizer.model``, wrapped (HF ``LlamaTokenizer(legacy=True)`` behaviour).

    Text is encoded by sentencepiece as is (the model's ``add_dummy_prefix`` decides the leading "▁"); ``bos`` is
    prepended with ``add_bos_token`` and ``eos`` appended with ``add_eos_token``; special tokens are matched whole.
    A family subclasses it and sets the ``default_*`` class attributes its checkpoints use.
    """

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]
    FILE_LIST = ["tokenizer_config.json"]
    default_pad_token: str | None = "</s>"
    default_add_bos_token: bool = True
    default_add_eos_token: bool = False

    def __init__(
        self,
        vocab_file: str,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str | None = None,
        sp_model_kwargs: dict | None = None,
        add_bos_token: bool | None = None,
        add_eos_token: bool | None = None,
        clean_up_tokenization_spaces: bool = False,
        **kwargs,
    ):
        cls = type(self)
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.vocab_file = vocab_file
        self.add_bos_token = cls.default_add_bos_token if add_bos_token is None else add_bos_token
        self.add_eos_token = cls.default_add_eos_token if add_eos_token is None else add_eos_token
        self.sp_model = _load_sentencepiece(cls.__name__, vocab_file, self.sp_model_kwargs)
        pad_token = cls.default_pad_token if pad_token is None else pad_token
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
        self.sp_model = _load_sentencepiece(type(self).__name__, self.vocab_file, self.sp_model_kwargs)

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
            raise TokenizerFileError(f"{type(self).__name__}.save_vocabulary: {save_directory!r} is not a directory")
        out = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        if os.path.abspath(self.vocab_file) != os.path.abspath(out):
            shutil.copyfile(self.vocab_file, out)
        return (out,)
