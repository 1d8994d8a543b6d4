"""The one exception type conversion raises for bad input: its message is a single line meant for users."""

from __future__ import annotations

from mf_ext.errors import MfExtError


class ConversionError(MfExtError):
    """Bad input or output for a conversion; ``str(e)`` is a one-line message naming the file/tensor."""
