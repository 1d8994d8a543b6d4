"""`mf-ext data` command (``mf_ext.cli`` dispatches here); the logic lives in :mod:`mf_ext.data.preprocess`."""

from __future__ import annotations

from .preprocess import main

__all__ = ["main"]
