"""Call a plug-in folder's converter the way it was written to be called.

Two conventions exist:

* **mf-ext's** (a folder declaring ``family.py``, or whose converter module is built on ``mf_ext``):
  ``convert_pt_to_ms(input_path, output_path, dtype=None, **kw)`` with ``dtype`` a string and the engine's options
  (``format``, ``qkv_concat``, ``dry_run``, ``hf_config``, ``progress``, ...). Called as it is.
* **MindFormers'** (research folders written for its ``convert_weight.py``, e.g. ``research/qwen2_5``,
  ``research/telechat2`` of r1.8.0, ``research/internlm2`` of r1.5.0): MindFormers calls
  ``convert_func(input_path=..., output_path=..., dtype=DTYPE, **extra)`` where ``DTYPE`` is a MindSpore dtype
  (``mindspore.bfloat16`` for ``--dtype bf16``; a torch dtype for a reverse converter; None when not asked) and
  ``extra`` holds its other flags (``qkv_concat`` ...). Here the signature is inspected and only what it takes is
  passed (``research/deepseek3``'s ``convert_pt_to_ms(input_path, output_path, config=None)`` takes no dtype); what
  the converter cannot honour -- ``--dry-run``, ``qkv_concat=True``, ``--hf_config`` ... -- is refused with one line
  before anything is written (a converter honours an option its signature names, or one its ``**kwargs`` code reads).
  It writes under a temporary name that is renamed when it succeeds (removed when it fails); a converter that
  returns False (MindFormers' way of saying it failed) or raises is one line naming the converter.
"""

from __future__ import annotations

import ast
import inspect
import os
import shutil
import sys
import textwrap
import types
from pathlib import Path

from mf_ext.convert.errors import ConversionError
from mf_ext.errors import MfExtError, one_line

__all__ = ["call_converter", "convention", "converter_file", "honours"]

# direction -> (file, function)
_FILES = {
    "hf_to_ms": ("convert_weight.py", "convert_pt_to_ms"),
    "ms_to_hf": ("convert_reversed.py", "convert_ms_to_pt"),
}


def converter_file(plugin, direction: str) -> Path:
    """The file of a plug-in holding the converter for ``direction`` (``hf_to_ms`` or ``ms_to_hf``)."""
    return plugin.root / _FILES[direction][0]


def _from_mf_ext(value) -> bool:
    name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
    return isinstance(name, str) and (name == "mf_ext" or name.startswith("mf_ext."))


def convention(plugin, fn) -> str:
    """``"mf_ext"`` or ``"mindformers"``: how ``fn`` (a converter of ``plugin``) expects to be called."""
    if not plugin.family.legacy:
        return "mf_ext"
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    if module is not None and any(_from_mf_ext(v) for v in vars(module).values()):
        return "mf_ext"
    return "mindformers"


def _signature_params(fn) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def _parameters(fn) -> tuple[list[inspect.Parameter], set[str], bool]:
    """(positional parameters, names it takes by keyword, whether it takes ``**kwargs``)."""
    params = _signature_params(fn)
    if not params:
        return [], set(), True  # no signature to read (a builtin): assume it takes what MindFormers passes
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    return positional, named, any(p.kind is kinds.VAR_KEYWORD for p in params)


def honours(fn, option: str) -> bool:
    """Whether converter ``fn`` acts on ``option``: its signature names it, or its code reads it from ``**kwargs``
    (``kwargs.get("qkv_concat")``, ``kwargs["qkv_concat"]``, ``args.qkv_concat``; comments do not count)."""
    _, named, var_kw = _parameters(fn)
    if option in named:
        return True
    if not var_kw:
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(
        (isinstance(node, ast.Constant) and node.value == option)
        or (isinstance(node, ast.Attribute) and node.attr == option)
        for node in ast.walk(tree)
    )


def _accepts(fn, option: str) -> bool:
    _, named, var_kw = _parameters(fn)
    return option in named or var_kw


def _mindformers_dtype(dtype, direction: str):
    """The dtype object MindFormers' convert_weight.py passes: MindSpore's for hf_to_ms, torch's for ms_to_hf."""
    if dtype is None:
        return None
    from mf_ext.convert.dtypes import canonical

    name = canonical(dtype)
    if name not in ("float32", "float16", "bfloat16"):
        raise ConversionError(f"--dtype {dtype!r}: MindFormers' converters take fp32, fp16 or bf16")
    if direction == "ms_to_hf":
        import torch

        return getattr(torch, name)
    import mindspore as ms

    return getattr(ms, name)


# option -> the value meaning "not asked for" (nothing to honour); a converter must honour any other value
_NOT_ASKED = {
    "dry_run": False,
    "qkv_concat": (False, None),
    "format": ("ckpt", None),
    "hf_config": None,
    "ms_config": None,
    "lora_output": None,
}
_FLAGS = {
    "dry_run": "--dry-run",
    "qkv_concat": "--qkv_concat",
    "format": "--format",
    "hf_config": "--hf_config",
    "ms_config": "--ms_config",
    "lora_output": "--lora_output",
}


def _not_asked(option: str, value) -> bool:
    quiet = _NOT_ASKED[option]
    return value in quiet if isinstance(quiet, tuple) else value == quiet


def _tmp_name(out: Path) -> Path:
    # the suffix stays (a converter may tell a .ckpt file from a folder by it)
    return out.with_name(f".mf-ext-partial-{os.getpid()}-{out.name}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def call_converter(plugin, direction: str, input_path, output_path, *, dtype=None, who: str | None = None, **options):
    """Run ``plugin``'s converter for ``direction`` (``hf_to_ms``/``ms_to_hf``) with the convention it was written for.

    ``options`` are mf-ext's (``format``, ``qkv_concat``, ``dry_run``, ``hf_config``, ``progress``,
    ``max_shard_bytes``, ``ms_config``, ``lora_output``, ``lora_alpha``). ``who`` names what asked for an option in
    refusals (``"model.model_config.qkv_concat in the YAML"``). Returns what the converter returns (mf-ext's converters
    return a result with ``summary()``, or the plan for a dry run).
    """
    from mf_ext.registry import plugin_imports

    file, func = _FILES[direction]
    fn = plugin.convert_pt_to_ms if direction == "hf_to_ms" else plugin.convert_ms_to_pt
    if convention(plugin, fn) == "mf_ext":
        with plugin_imports():
            return fn(input_path, output_path, dtype, **options)

    where = f"{str(plugin.root / file)!r}: {func}"
    positional, named, var_kw = _parameters(fn)
    takes_args = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in _signature_params(fn))
    if len(positional) < 2 and not takes_args:
        raise ConversionError(
            f"{where} takes {len(positional)} positional argument(s); expected {func}(input_path, output_path, ...)"
        )
    signature = f"{func}{inspect.signature(fn)}"
    kwargs: dict = {}
    if _accepts(fn, "dtype"):
        kwargs["dtype"] = _mindformers_dtype(dtype, direction)
    elif dtype is not None:
        raise ConversionError(f"{where} takes no dtype (its signature is {signature}); drop --dtype {dtype}")
    for option, value in options.items():
        if option not in _NOT_ASKED:
            if option in named:  # cosmetic options (progress, max_shard_bytes, lora_alpha): only where named
                kwargs[option] = value
            continue
        if _not_asked(option, value):
            # MindFormers always passes qkv_concat (False unless asked); some converters default it to True
            if option == "qkv_concat" and value is not None and _accepts(fn, option):
                kwargs[option] = False
            continue
        if not honours(fn, option):
            asked = who if option == "qkv_concat" and who else _FLAGS.get(option, f"{option}={value!r}")
            how = "does not take it" if not var_kw else "never reads it from its **kwargs"
            hint = f"; drop {asked}" if asked.startswith("--") else f"; set {asked.split()[0]} False" if who else ""
            raise ConversionError(
                f"{where} cannot honour {option}={value!r} (asked by {asked}): {signature} {how}{hint}"
            )
        kwargs[option] = value

    out = Path(output_path)
    tmp = _tmp_name(out)
    _remove(tmp)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with plugin_imports():  # a sibling the converter imports while it runs is its own folder's
            result = fn(str(input_path), str(tmp), **kwargs)
        if result is False:  # MindFormers' converters print why and return False
            raise ConversionError(
                f"{where} returned False: it could not convert {str(input_path)!r} (see its output above)"
            )
        if not tmp.exists():
            raise ConversionError(f"{where} returned without writing {str(output_path)!r}")
        if out.exists():
            _remove(out)
        os.replace(tmp, out)
    except MfExtError:
        _remove(tmp)
        raise
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, Exception) and not os.environ.get("MF_EXT_DEBUG"):
            raise ConversionError(f"{where} failed: {type(exc).__name__}: {one_line(exc)}") from exc
        raise
    return result
