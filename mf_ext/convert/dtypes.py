"""Dtype names across safetensors / MindSpore / torch, and numpy casts that treat bf16 as raw uint16 bits.

numpy has no bfloat16, so a bf16 tensor travels as ``uint16`` bit patterns and is only widened to float32 when
a cast is asked for. float8_e4m3fn travels as ``uint8`` bit patterns and is decoded through a 256-entry table;
it is read only (FP8 block dequantisation is one-way: nothing is cast *to* fp8, and MindSpore checkpoints cannot
hold it). Nothing here imports torch or MindSpore.
"""

from __future__ import annotations

import numpy as np

from mf_ext.convert.errors import ConversionError

# canonical name -> (safetensors code, MindSpore checkpoint tensor_type or None, numpy storage dtype)
_TABLE: dict[str, tuple[str, str | None, np.dtype]] = {
    "float32": ("F32", "Float32", np.dtype("<f4")),
    "float16": ("F16", "Float16", np.dtype("<f2")),
    "bfloat16": ("BF16", "BFloat16", np.dtype("<u2")),  # raw bits
    "float64": ("F64", "Float64", np.dtype("<f8")),
    "int64": ("I64", "Int64", np.dtype("<i8")),
    "int32": ("I32", "Int32", np.dtype("<i4")),
    "int16": ("I16", "Int16", np.dtype("<i2")),
    "int8": ("I8", "Int8", np.dtype("i1")),
    "uint8": ("U8", "UInt8", np.dtype("u1")),
    "bool": ("BOOL", "Bool", np.dtype("?")),
    "float8_e4m3fn": ("F8_E4M3", None, np.dtype("u1")),  # raw bits; MindSpore .ckpt has no fp8 tensor_type
}
_FROM_ST = {v[0]: k for k, v in _TABLE.items()}
_FROM_MS = {v[1]: k for k, v in _TABLE.items() if v[1] is not None}
_ALIASES = {
    "fp32": "float32",
    "f32": "float32",
    "float": "float32",
    "fp16": "float16",
    "f16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "fp64": "float64",
    "double": "float64",
    "fp8": "float8_e4m3fn",
    "float8": "float8_e4m3fn",
    "f8_e4m3": "float8_e4m3fn",
}
FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


def canonical(dtype: object) -> str:
    """Normalise a user/library dtype (``"fp16"``, ``"bfloat16"``, ``mindspore.float16``, ``torch.bfloat16``)."""
    s = str(dtype).strip()
    for prefix in ("torch.", "mindspore.", "ms."):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    low = s.lower()
    low = _ALIASES.get(low, low)
    if low in _TABLE:
        return low
    if s in _FROM_MS:
        return _FROM_MS[s]
    if s in _FROM_ST:
        return _FROM_ST[s]
    raise ConversionError(f"unknown dtype {dtype!r}; expected one of float32, float16, bfloat16 (or fp32/fp16/bf16)")


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (round to nearest even), as torch's ``.to(torch.bfloat16)``."""
    return _f32_to_bf16(x)


def from_safetensors(code: str) -> str:
    try:
        return _FROM_ST[code]
    except KeyError:
        raise ConversionError(f"unsupported safetensors dtype {code!r}") from None


def from_mindspore(name: str) -> str:
    try:
        return _FROM_MS[name]
    except KeyError:
        raise ConversionError(f"unsupported MindSpore checkpoint tensor_type {name!r}") from None


def to_safetensors(dtype: str) -> str:
    return _TABLE[dtype][0]


def to_mindspore(dtype: str) -> str:
    ms = _TABLE[dtype][1]
    if ms is None:
        raise ConversionError(f"a MindSpore checkpoint cannot hold {dtype} tensors; convert with --dtype bfloat16")
    return ms


def storage(dtype: str) -> np.dtype:
    """numpy dtype used to hold the raw bytes (uint16 for bfloat16)."""
    return _TABLE[dtype][2]


def itemsize(dtype: str) -> int:
    return _TABLE[dtype][2].itemsize


def _bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even, NaN kept quiet: the same bits torch produces for ``.to(torch.bfloat16)``."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + (((u >> 16) & 1) + np.uint32(0x7FFF))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def _e4m3fn_table() -> np.ndarray:
    """float32 value of each of the 256 float8_e4m3fn bit patterns (OCP FP8 E4M3, "fn": no infinities).

    1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal (``m/8 * 2**-6``); the two
    patterns with all exponent and mantissa bits set (0x7F, 0xFF) are NaN; the largest finite value is 448.
    """
    bits = np.arange(256, dtype=np.uint32)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exp = ((bits >> 3) & 0xF).astype(np.int64)
    man = (bits & 0x7).astype(np.float64)
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7)
    sub = (man / 8.0) * np.exp2(-6.0)
    val = sign * np.where(exp == 0, sub, normal)
    val[(bits & 0x7F) == 0x7F] = np.nan
    return val.astype(np.float32)


E4M3FN_TO_F32 = _e4m3fn_table()


def fp8_e4m3fn_to_f32(bits: np.ndarray) -> np.ndarray:
    """Decode float8_e4m3fn bit patterns (uint8) to float32 (exact: every fp8 value is a float32)."""
    return E4M3FN_TO_F32[np.asarray(bits, dtype=np.uint8)]


def cast(arr: np.ndarray, src: str, dst: str, name: str) -> np.ndarray:
    """Cast storage array ``arr`` from ``src`` to ``dst``; raise if finite values overflow to inf (``name`` in msg)."""
    if src == dst:
        return arr
    if dst == "float8_e4m3fn":
        raise ConversionError(
            f"tensor {name!r}: cannot cast {src} to float8_e4m3fn: FP8 block quantisation is one-way here "
            f"(dequantise only); choose --dtype bfloat16 or float32"
        )
    if src == "float8_e4m3fn" and dst in FLOAT_DTYPES:
        arr, src = fp8_e4m3fn_to_f32(arr), "float32"
        if dst == "float32":
            return arr
    if src not in FLOAT_DTYPES or dst not in FLOAT_DTYPES:
        raise ConversionError(f"tensor {name!r}: cannot cast {src} to {dst} (only floating tensors are cast)")
    wide = _bf16_to_f32(arr) if src == "bfloat16" else arr
    if dst == "bfloat16":
        out = _f32_to_bf16(wide.astype(np.float32, copy=False))
        check = _bf16_to_f32(out)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = wide.astype(storage(dst))
        check = out
    # a narrowing cast must not turn a finite value into inf silently
    bad = np.isinf(check) & np.isfinite(wide)
    if bad.any():
        worst = float(np.max(np.abs(wide[bad])))
        raise ConversionError(
            f"tensor {name!r}: value {worst:g} overflows {dst} when casting from {src}; "
            f"keep the source dtype or choose a wider --dtype"
        )
    return out
