"""Dataset preprocessing for finetuning (`mf-ext data`): chat data → the chat template → masked labels → MindRecord.

Importing this package is cheap; MindSpore/transformers are imported only when data is actually processed.
"""

from __future__ import annotations

__all__ = ["main", "preprocess", "IGNORE_INDEX", "DataError"]

IGNORE_INDEX = -100


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mf-ext data` (called by ``mf_ext.cli``); returns the process exit status."""
    from .preprocess import main as _main

    return _main(argv)


def __getattr__(name):  # PEP 562: lazy public API
    if name == "preprocess":
        from .preprocess import preprocess

        return preprocess
    if name == "DataError":
        from .sources import DataError

        return DataError
    raise AttributeError(f"module 'mf_ext.data' has no attribute {name!r}")
