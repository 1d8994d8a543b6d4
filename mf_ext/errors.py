"""The one base class of every error mf-ext raises for bad input.

Each entry point (``run_mindformer_ext.py``, every ``mf-ext`` subcommand, the converters' ``main``) catches
:class:`MfExtError` once and prints ``error: <message>`` on one line with a non-zero exit status; anything else is
a bug and keeps its traceback. Messages are a single line naming the file, key or tensor and what was expected.

The specific classes stay (``ConfigError``, ``RegistryError``, ``ConversionError``, ...) so callers can catch
narrowly; they live next to the code that raises them and all derive from :class:`MfExtError`. Most also derive
from ``ValueError`` as they always did, so existing ``except ValueError`` callers keep working.
"""

from __future__ import annotations

__all__ = ["MfExtError", "one_line"]


class MfExtError(Exception):
    """Bad input or environment, reported to the user as one line (``str(e)``)."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)``, or the exception's type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
