"""Read chat/instruction datasets from local disk into one normalised shape: a list of ``{"role", "content"}``.

Accepted inputs (detected per file, and per record for the row format):

* JSON array file (``[{...}, {...}]``) or JSON Lines (one object per line; ``.jsonl`` or a ``.json`` file that
  does not start with ``[``).
* Anything ``datasets`` reads from local disk: a ``save_to_disk`` folder, a folder of data files, or a single
  ``.parquet`` / ``.csv`` / ``.arrow`` file.

Row formats:

* Alpaca: ``instruction``, optional ``input``, ``output``, optional ``system`` and ``history`` (``[[q, a], ...]``).
* ShareGPT: ``conversations: [{"from": "human"|"gpt"|"system", "value": ...}]`` (optional top-level ``system``).
* OpenAI messages: ``messages: [{"role": "user"|"assistant"|"system", "content": ...}]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mf_ext.errors import MfExtError

_ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
}
_DATASETS_EXTS = {".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


class DataError(MfExtError, ValueError):
    """A one-line, user-facing problem with the input data (file, line/record and what was expected)."""


@dataclass
class Record:
    """One raw row plus where it came from (for error messages)."""

    where: str  # "data.jsonl:17" or "data.json[3]"
    row: object


def iter_records(path: str | Path, on_error: str = "stop", bad: list[str] | None = None) -> Iterator[Record]:
    """Yield every row of ``path``. Malformed JSON lines raise :class:`DataError` (``on_error="stop"``) or are
    appended to ``bad`` as one-line messages and skipped (``on_error="skip"``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset path {str(path)!r} does not exist")
    if path.is_dir() or path.suffix.lower() in _DATASETS_EXTS:
        yield from _iter_hf_datasets(path)
        return
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise DataError(
            f"dataset file {str(path)!r} has an unsupported extension; expected .json, .jsonl, .parquet, .csv, "
            ".arrow or a folder readable by datasets"
        )
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    if head.startswith("["):
        text = path.read_text(encoding="utf-8")
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            # A JSON array is one document: nothing after the error can be trusted, so always stop here.
            raise DataError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg})") from None
        for i, row in enumerate(rows):
            yield Record(f"{path.name}[{i}]", row)
        return
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                msg = f"{path}:{lineno}: malformed JSON line ({e.msg} at column {e.colno})"
                if on_error == "stop":
                    raise DataError(msg + "; pass --on_error skip to skip such lines") from None
                if bad is not None:
                    bad.append(msg)
                continue
            yield Record(f"{path.name}:{lineno}", row)


def _iter_hf_datasets(path: Path) -> Iterator[Record]:
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local disk only, never the hub
    import datasets

    try:
        if path.is_dir() and (path / "state.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
        elif path.is_dir():
            ds = datasets.load_dataset(str(path), split="train")
        else:
            ds = datasets.load_dataset(_DATASETS_EXTS[path.suffix.lower()], data_files=str(path), split="train")
    except Exception as e:  # datasets raises many types; the user needs the path and the reason on one line
        raise DataError(f"cannot read dataset {str(path)!r} with datasets: {type(e).__name__}: {e}") from None
    for i, row in enumerate(ds):
        yield Record(f"{path.name}[{i}]", row)


def to_messages(rec: Record, fmt: str = "auto") -> list[dict[str, str]]:
    """Normalise one row to chat messages. Raises :class:`DataError` naming ``rec.where`` when the row does not
    fit ``fmt`` (``auto``, ``alpaca``, ``sharegpt``)."""
    row = rec.row
    if not isinstance(row, dict):
        raise DataError(f"{rec.where}: expected a JSON object, got {type(row).__name__}")
    if fmt == "auto":
        if "conversations" in row or "messages" in row:
            fmt = "sharegpt"
        elif "instruction" in row or "output" in row:
            fmt = "alpaca"
        else:
            raise DataError(
                f"{rec.where}: cannot tell the format from keys {sorted(row)!r}; expected Alpaca "
                "('instruction', 'output') or ShareGPT ('conversations' or 'messages')"
            )
    msgs = _alpaca(rec) if fmt == "alpaca" else _sharegpt(rec)
    if not any(m["role"] == "assistant" for m in msgs):
        raise DataError(f"{rec.where}: no assistant/gpt response to train on")
    # Turns after the last response carry no trainable token; dropping them keeps sequences short.
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[: last + 1]


def _text(rec: Record, value: object, key: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{rec.where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _alpaca(rec: Record) -> list[dict[str, str]]:
    row = rec.row
    for key in ("instruction", "output"):
        if key not in row:
            raise DataError(f"{rec.where}: Alpaca row lacks {key!r} (has {sorted(row)!r})")
    msgs = []
    if row.get("system"):
        msgs.append({"role": "system", "content": _text(rec, row["system"], "system")})
    for j, pair in enumerate(row.get("history") or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise DataError(f"{rec.where}: 'history'[{j}] must be a [question, answer] pair")
        msgs.append({"role": "user", "content": _text(rec, pair[0], f"history[{j}][0]")})
        msgs.append({"role": "assistant", "content": _text(rec, pair[1], f"history[{j}][1]")})
    prompt = _text(rec, row["instruction"], "instruction")
    extra = row.get("input") or ""
    if extra:
        prompt = f"{prompt}\n\n{_text(rec, extra, 'input')}"
    msgs.append({"role": "user", "content": prompt})
    msgs.append({"role": "assistant", "content": _text(rec, row["output"], "output")})
    return msgs


def _sharegpt(rec: Record) -> list[dict[str, str]]:
    row = rec.row
    key = "conversations" if "conversations" in row else "messages"
    turns = row.get(key)
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{rec.where}: {key!r} must be a non-empty list of turns")
    msgs = []
    if row.get("system"):
        msgs.append({"role": "system", "content": _text(rec, row["system"], "system")})
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise DataError(f"{rec.where}: {key}[{j}] must be an object")
        role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        if role not in _ROLE_ALIASES:
            raise DataError(f"{rec.where}: {key}[{j}] has role {role!r}; expected one of {sorted(_ROLE_ALIASES)!r}")
        msgs.append({"role": _ROLE_ALIASES[role], "content": _text(rec, content, f"{key}[{j}] content")})
    return msgs
