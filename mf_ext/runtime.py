"""Where MindFormers writes its logs and what of it reaches the console, decided before MindFormers is imported.

MindFormers 1.9 creates its logger on first use inside ``import mindformers``: two rotating files under
``$LOG_MF_PATH/rank_<r>/`` (default ``$LOCAL_DEFAULT_PATH/log``, i.e. ``./output/log`` of the *current directory*)
and a console handler on the ``sys.stdout`` of that moment at level INFO, which prints import-time warnings about
optional modules (``Import PyNativeDeepseekV3ForCausalLM failed: No module named 'hyper_parallel'``) and config
sections a run mode does not use. :func:`prepare_mindformers` sets the log folder and arranges for that first import
to bind the console handler to a sink, then re-points it at the real stdout at the level the run wants: the files
keep everything, the console only errors. ``MF_EXT_VERBOSE=1`` leaves MindFormers' console as it is.

Nothing here imports MindSpore or MindFormers.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import logging
import os
import sys
from pathlib import Path

__all__ = ["prepare_mindformers", "verbose"]

_CONSOLE_LEVEL = logging.ERROR
_DROP_WARNINGS = False


def verbose() -> bool:
    """True when ``MF_EXT_VERBOSE`` asks for MindFormers' full console output."""
    return os.environ.get("MF_EXT_VERBOSE", "") not in ("", "0")


def prepare_mindformers(log_dir: str | os.PathLike, *, output_dir: str | os.PathLike | None = None, info=False) -> None:
    """Send MindFormers' log files to ``log_dir`` and keep its console to errors (``info``: errors and INFO lines,
    for MindFormers' own Trainer, which reports progress that way); call before MindFormers is imported.

    ``output_dir`` also becomes MindFormers' output root (``LOCAL_DEFAULT_PATH``, what run_mindformer.py's
    ``set_output_path`` sets), so checkpoints and strategy files of its Trainer land there too. A ``LOG_MF_PATH``
    the user exported wins over ``log_dir``.
    """
    global _CONSOLE_LEVEL, _DROP_WARNINGS
    os.environ.setdefault("LOG_MF_PATH", str(Path(log_dir).expanduser().resolve()))
    if output_dir is not None:
        os.environ["LOCAL_DEFAULT_PATH"] = str(Path(output_dir).expanduser().resolve())
    _CONSOLE_LEVEL, _DROP_WARNINGS = (logging.INFO, True) if info else (logging.ERROR, False)
    if verbose():
        return
    os.environ.setdefault("GLOG_v", "3")  # MindSpore (C++ and its Python logger, read at import): errors only
    if "mindformers" in sys.modules:  # imported already (a library user, a test): adjust what exists
        _quiet_console(None)
        return
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _NoWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING


def _quiet_console(stream) -> None:
    from mindformers.tools.logger import get_logger

    for handler in get_logger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if stream is not None:
                handler.setStream(stream)
            handler.setLevel(_CONSOLE_LEVEL)
            if _DROP_WARNINGS and not any(isinstance(f, _NoWarnings) for f in handler.filters):
                handler.addFilter(_NoWarnings())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``mindformers`` once and runs its import with ``sys.stdout`` on a sink (see the module docstring)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "mindformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner) -> None:
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        real, sink = sys.stdout, io.StringIO()
        sys.stdout = sink
        try:
            self.inner.exec_module(module)
            sys.stdout = real
            _quiet_console(real)
        except BaseException:
            sys.stdout = real
            sys.stderr.write(sink.getvalue())  # what MindFormers said before failing may explain the failure
            raise
        finally:
            sys.stdout = real
        # Anything else printed during the import (not MindFormers' logger) is passed on.
        text = "\n".join(
            line for line in sink.getvalue().splitlines() if " - WARNING - " not in line and " - INFO - " not in line
        )
        if text.strip():
            print(text, file=real)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.inner, name)
