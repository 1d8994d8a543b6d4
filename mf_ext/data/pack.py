"""Fit tokenised samples into fixed-length rows: one sample per row (pad) or several whole samples per row (pack)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .chat import IGNORE_INDEX


@dataclass
class Stats:
    """Counters printed in the closing summary (and returned to callers/tests)."""

    samples_read: int = 0
    samples_bad: int = 0
    samples_written: int = 0
    samples_truncated: int = 0
    samples_dropped: int = 0  # nothing left to train on after truncation
    rows: int = 0
    tokens: int = 0  # real (non-padding) tokens written
    target_tokens: int = 0  # tokens with a label (not IGNORE_INDEX)
    padding: int = 0
    bad_messages: list[str] = field(default_factory=list)


def fit_rows(
    samples: Iterable[tuple[list[int], list[int]]], row_len: int, pad_id: int, packing: str, stats: Stats
) -> Iterator[tuple[list[int], list[int]]]:
    """Yield ``(input_ids, labels)`` rows of exactly ``row_len`` tokens.

    A sample longer than ``row_len`` is truncated (counted in ``stats.samples_truncated``); a sample with no
    labelled token left is dropped (``stats.samples_dropped``). ``packing="pack"`` fills a row with consecutive
    whole samples (first that does not fit starts the next row), so no response is ever split across rows.
    """
    if packing not in ("pad", "pack"):
        raise ValueError(f"packing must be 'pad' or 'pack', got {packing!r}")
    cur_ids: list[int] = []
    cur_labels: list[int] = []

    def flush() -> tuple[list[int], list[int]]:
        n_pad = row_len - len(cur_ids)
        stats.rows += 1
        stats.padding += n_pad
        return cur_ids + [pad_id] * n_pad, cur_labels + [IGNORE_INDEX] * n_pad

    for ids, labels in samples:
        if len(ids) > row_len:
            stats.samples_truncated += 1
            ids, labels = ids[:row_len], labels[:row_len]
        # Labels are shifted inside the model: the first position of a row is never a target.
        if all(lab == IGNORE_INDEX for lab in labels[1:]):
            stats.samples_dropped += 1
            continue
        stats.samples_written += 1
        stats.tokens += len(ids)
        stats.target_tokens += sum(lab != IGNORE_INDEX for lab in labels[1:])
        if packing == "pack" and cur_ids and len(cur_ids) + len(ids) > row_len:
            yield flush()
            cur_ids, cur_labels = [], []
        cur_ids, cur_labels = cur_ids + ids, cur_labels + labels
        if packing == "pad":
            yield flush()
            cur_ids, cur_labels = [], []
    if cur_ids:
        yield flush()
