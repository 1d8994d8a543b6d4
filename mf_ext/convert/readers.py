"""Checkpoint readers that look at headers first and hand out tensors lazily.

Every reader builds ``tensors: dict[name, TensorInfo]`` without reading tensor data. Data comes from ``mmap``
(file-backed pages, not anonymous memory), so a reader costs almost nothing however large the checkpoint is.
Formats: safetensors (single or sharded with ``*.safetensors.index.json``), MindSpore ``.ckpt`` (protobuf, parsed
here without MindSpore), torch pickles (``pytorch_model*.bin``, and the model-parallel ``*.pth`` shards of a source
format a spec declares, e.g. Meta's ``consolidated.*.pth``) via ``torch.load(weights_only=True, mmap=True)``.
:func:`dequantize` turns FP8 weights and their block scales into virtual tensors of a float dtype.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mf_ext.convert import dtypes
from mf_ext.convert.errors import ConversionError


@dataclass
class TensorInfo:
    name: str
    dtype: str  # canonical, see dtypes
    shape: tuple[int, ...]
    file: Path
    # (offset, length) byte ranges inside ``file`` whose concatenation is the tensor; empty for pickled tensors
    # and virtual (decoded) ones, which are never byte-copied
    ranges: list[tuple[int, int]] = field(default_factory=list)
    offset_hint: int = 0  # where the data sits in ``file`` when ``ranges`` is empty (for read ordering)

    @property
    def nbytes(self) -> int:
        n = dtypes.itemsize(self.dtype)
        for d in self.shape:
            n *= d
        return n

    @property
    def sort_key(self) -> tuple[str, int]:
        return (str(self.file), self.ranges[0][0] if self.ranges else self.offset_hint)


class Reader:
    """Base reader: ``tensors`` index plus ``array(name)`` returning the storage-dtype numpy array."""

    format = "?"

    def __init__(self) -> None:
        self.tensors: dict[str, TensorInfo] = {}
        self._maps: dict[Path, mmap.mmap] = {}
        self.files: list[Path] = []
        self.decoders: dict[str, object] = {}  # name -> () -> array, for virtual tensors (see dequantize)
        self.consumed: dict[str, str] = {}  # source tensors taken by a decoder -> why (e.g. FP8 block scales)

    def _map(self, path: Path) -> mmap.mmap:
        m = self._maps.get(path)
        if m is None:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
            self._maps[path] = m
        return m

    def array(self, name: str) -> np.ndarray:
        """The tensor's storage-dtype array (a view of the file where possible)."""
        decode = self.decoders.get(name)
        if decode is not None:
            return decode()
        return self._raw_array(name)

    def _raw_array(self, name: str, info: TensorInfo | None = None) -> np.ndarray:
        info = info or self.tensors[name]
        m = self._map(info.file)
        dt = dtypes.storage(info.dtype)
        if len(info.ranges) == 1:
            off, n = info.ranges[0]
            arr = np.frombuffer(m, dtype=dt, count=n // dt.itemsize, offset=off)
        else:
            arr = np.frombuffer(b"".join(m[o : o + n] for o, n in info.ranges), dtype=dt)
        return arr.reshape(info.shape)

    def close(self) -> None:
        for m in self._maps.values():
            if m is not None:
                try:
                    m.close()
                except BufferError:  # a numpy view still alive; the map goes away with it
                    pass
        self._maps.clear()


# ---------------------------------------------------------------------------------------------- safetensors
def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Return (header dict, data start offset); errors name the file and what is wrong."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConversionError(f"{str(path)!r} is not a safetensors file: {size} bytes, no header")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100 * 2**20):
                raise ConversionError(
                    f"{str(path)!r} has a corrupt safetensors header (header length {n} "
                    f"does not fit a {size}-byte file)"
                )
            raw = f.read(n)
    except OSError as e:
        raise ConversionError(f"cannot read {str(path)!r}: {e.strerror}") from None
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as e:
        raise ConversionError(f"{str(path)!r} has a corrupt safetensors header (not JSON: {e})") from None
    return header, 8 + n


class SafetensorsReader(Reader):
    format = "safetensors"

    def __init__(self, files: list[Path]) -> None:
        super().__init__()
        self.files = list(files)
        self.metadata: dict = {}
        for path in self.files:
            header, start = read_safetensors_header(path)
            size = path.stat().st_size
            self.metadata.update(header.pop("__metadata__", None) or {})
            for name, h in header.items():
                try:
                    dt = dtypes.from_safetensors(h["dtype"])
                    shape = tuple(int(d) for d in h["shape"])
                    a, b = (int(x) for x in h["data_offsets"])
                except (KeyError, TypeError, ValueError) as e:
                    raise ConversionError(
                        f"{str(path)!r} has a corrupt safetensors header entry for {name!r}: {e}"
                    ) from None
                info = TensorInfo(name, dt, shape, path, [(start + a, b - a)])
                if info.nbytes != b - a:
                    raise ConversionError(
                        f"{str(path)!r}: tensor {name!r} header says {b - a} bytes but shape "
                        f"{list(shape)} {dt} needs {info.nbytes}"
                    )
                if start + b > size:
                    raise ConversionError(
                        f"{str(path)!r} is truncated: tensor {name!r} ends at byte {start + b} "
                        f"but the file has {size} bytes"
                    )
                if name in self.tensors:
                    raise ConversionError(
                        f"tensor {name!r} appears in both {str(self.tensors[name].file)!r} and {str(path)!r}"
                    )
                self.tensors[name] = info


def _index_shards(index_path: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text())
        weight_map = index["weight_map"]
        shard_names = list(dict.fromkeys(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConversionError(
            f"{str(index_path)!r} is not a valid safetensors index (expected JSON with 'weight_map'): {e}"
        ) from None
    shards = []
    for name in shard_names:
        p = index_path.parent / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ConversionError(f"{str(index_path)!r} names shard {name!r} outside its folder")
        if not p.is_file():
            raise ConversionError(
                f"{str(index_path)!r} names shard {name!r}, which does not exist in {str(index_path.parent)!r}"
            )
        shards.append(p)
    return shards


def open_safetensors(path: Path) -> SafetensorsReader:
    """A ``.safetensors`` file, or a directory holding one file or an index plus shards."""
    if path.is_file():
        return SafetensorsReader([path])
    indexes = sorted(path.glob("*.safetensors.index.json"))
    if indexes:
        reader = SafetensorsReader(_index_shards(indexes[0]))
        weight_map = json.loads(indexes[0].read_text())["weight_map"]
        for name, shard in weight_map.items():
            info = reader.tensors.get(name)
            if info is None:
                raise ConversionError(
                    f"{str(indexes[0])!r} lists tensor {name!r} in {shard!r}, but that shard does not hold it"
                )
        return reader
    files = sorted(path.glob("*.safetensors"))
    return SafetensorsReader(files)


# ---------------------------------------------------------------------------------------------- MindSpore .ckpt
def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


class CkptReader(Reader):
    """MindSpore ``.ckpt``: protobuf ``Checkpoint{repeated Value value=1}``, ``Value{tag=1, tensor=2}``,
    ``TensorProto{dims=1, tensor_type=2, tensor_content=3}``. Consecutive values with one tag are slices of
    one tensor (MindSpore splits tensors above 512 MiB). Parsed in place, content is never copied."""

    format = "ckpt"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.files = [path]
        self.skipped: list[str] = []
        m = self._map(path)
        if m is None:
            raise ConversionError(f"{str(path)!r} is empty, not a MindSpore checkpoint")
        end = len(m)
        if end >= 17 and m[end - 17 : end - 10] == b"crc_num":  # optional CRC trailer written by MindSpore
            end -= 17
        pos = 0
        order: list[str] = []
        try:
            while pos < end:
                key, pos = _varint(m, pos)
                if key & 7 != 2:
                    raise ValueError(f"unexpected field key {key} at byte {pos}")
                n, pos = _varint(m, pos)
                vend = pos + n
                if vend > end:
                    raise ValueError(f"value at byte {pos} runs past the end of the file (truncated?)")
                if key != 0x0A:  # another length-delimited field (our writer's padding): not a tensor
                    pos = vend
                    continue
                tag, tinfo = self._parse_value(m, pos, vend)
                pos = vend
                prev = self.tensors.get(tag)
                dims, ttype, crange = tinfo
                if ttype == "str":  # string metadata MindSpore can store beside tensors: not a weight
                    self.skipped.append(tag)
                    continue
                if prev is not None and order and order[-1] == tag:
                    prev.ranges.append(crange)
                    continue
                if prev is not None:
                    raise ValueError(f"tensor {tag!r} appears twice")
                dt = dtypes.from_mindspore(ttype)
                shape = tuple(dims) if dims != [0] else ()
                self.tensors[tag] = TensorInfo(tag, dt, shape, path, [crange])
                order.append(tag)
        except (ValueError, IndexError) as e:
            raise ConversionError(f"{str(path)!r} is not a valid MindSpore checkpoint: {e}") from None
        for info in self.tensors.values():
            got = sum(n for _, n in info.ranges)
            if got != info.nbytes:
                raise ConversionError(
                    f"{str(path)!r}: tensor {info.name!r} holds {got} bytes but shape "
                    f"{list(info.shape)} {info.dtype} needs {info.nbytes}"
                )

    @staticmethod
    def _parse_value(m, pos: int, end: int):
        tag = None
        tensor = None
        while pos < end:
            key, pos = _varint(m, pos)
            if key & 7 != 2:
                raise ValueError(f"unexpected wire type in Value at byte {pos}")
            n, pos = _varint(m, pos)
            if key >> 3 == 1:
                tag = bytes(m[pos : pos + n]).decode()
            elif key >> 3 == 2:
                tensor = CkptReader._parse_tensor(m, pos, pos + n)
            else:
                raise ValueError("map tensors are not supported")
            pos += n
        if tag is None or tensor is None:
            raise ValueError(f"value without tag or tensor before byte {end}")
        return tag, tensor

    @staticmethod
    def _parse_tensor(m, pos: int, end: int):
        dims: list[int] = []
        ttype = None
        crange = (pos, 0)
        while pos < end:
            key, pos = _varint(m, pos)
            field_no, wire = key >> 3, key & 7
            if field_no == 1 and wire == 0:
                d, pos = _varint(m, pos)
                dims.append(d)
            elif field_no == 1 and wire == 2:  # packed dims
                n, pos = _varint(m, pos)
                stop = pos + n
                while pos < stop:
                    d, pos = _varint(m, pos)
                    dims.append(d)
            elif wire == 2:
                n, pos = _varint(m, pos)
                if field_no == 2:
                    ttype = bytes(m[pos : pos + n]).decode()
                elif field_no == 3:
                    crange = (pos, n)
                pos += n
            else:
                raise ValueError(f"unexpected field {field_no} in TensorProto")
        if ttype is None:
            raise ValueError("tensor without tensor_type")
        return dims, ttype, crange


# ---------------------------------------------------------------------------------------------- torch pickles
class TorchReader(Reader):
    """``pytorch_model*.bin`` / ``consolidated.*.pth``: loaded with ``weights_only=True`` (no code runs) and
    ``mmap=True`` (file-backed). ``concat_dim(name)`` merges model-parallel Meta shards along that axis."""

    format = "torch"

    def __init__(self, files: list[Path], concat_dim=None) -> None:
        super().__init__()
        import torch

        self.files = list(files)
        self._torch = torch
        self._parts: dict[str, list] = {}
        for path in self.files:
            try:
                try:
                    sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as e:
                    if "mmap" not in str(e):
                        raise
                    # pre-1.6 (non-zip) files cannot be memory-mapped: load them into memory instead
                    sd = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 -- torch raises many types for a bad pickle
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ConversionError(
                    f"cannot load {str(path)!r} as a torch checkpoint (weights_only=True): {first}"
                ) from None
            if not isinstance(sd, dict):
                raise ConversionError(f"{str(path)!r} holds a {type(sd).__name__}, expected a state dict")
            for name, t in sd.items():
                if not isinstance(t, torch.Tensor):
                    raise ConversionError(f"{str(path)!r}: entry {name!r} is a {type(t).__name__}, not a tensor")
                self._parts.setdefault(name, []).append(t)
        self._concat = concat_dim
        for name, parts in self._parts.items():
            t = parts[0]
            dt = dtypes.canonical(t.dtype)
            shape = list(t.shape)
            if len(parts) > 1:
                axis = concat_dim(name) if concat_dim else None
                if axis is not None:
                    shape[axis] = sum(p.shape[axis] for p in parts)
            self.tensors[name] = TensorInfo(name, dt, tuple(shape), self.files[0])

    def _raw_array(self, name: str, info: TensorInfo | None = None) -> np.ndarray:
        torch = self._torch
        parts = self._parts[name]
        axis = self._concat(name) if (self._concat and len(parts) > 1) else None
        if axis is not None:
            t = torch.cat(parts, dim=axis)
        else:
            t = parts[0]
        if t.dtype == torch.bfloat16:
            return t.contiguous().view(torch.int16).numpy().view(np.uint16)
        if t.dtype.is_floating_point and t.element_size() == 1:  # fp8: numpy has none, keep the bits
            return t.contiguous().view(torch.uint8).numpy()
        return t.contiguous().numpy()


# ---------------------------------------------------------------------------------------------- dispatch
def open_source(path: str | os.PathLike, *, formats: dict | None = None) -> Reader:
    """Open a checkpoint file or directory, choosing the reader from what is there.

    ``formats`` maps a source-format name to an object with ``files`` (a glob) and ``shard_axis`` (see
    :class:`mf_ext.convert.spec.Format`): a folder holding such files is read as that format (``reader.format``),
    its model-parallel shards concatenated along ``shard_axis(name)``.
    """
    p = Path(path)
    if not p.exists():
        raise ConversionError(f"input path {str(p)!r} does not exist")
    if p.is_file():
        if p.suffix == ".safetensors":
            return open_safetensors(p)
        if p.suffix == ".ckpt":
            return CkptReader(p)
        if p.suffix in (".bin", ".pth", ".pt"):
            return TorchReader([p])
        raise ConversionError(
            f"input file {str(p)!r} has an unknown extension; expected .safetensors, .ckpt, .bin or .pth"
        )
    if list(p.glob("*.safetensors")) or list(p.glob("*.safetensors.index.json")):
        return open_safetensors(p)
    ckpts = sorted(p.glob("*.ckpt"))
    if len(ckpts) == 1:
        return CkptReader(ckpts[0])
    bins = sorted(p.glob("pytorch_model*.bin"))
    if bins:
        return TorchReader(bins)
    for name, fmt in (formats or {}).items():
        files = sorted(p.glob(fmt.files))
        if files:
            r = TorchReader(files, concat_dim=fmt.shard_axis)
            r.format = name
            return r
    if len(ckpts) > 1:
        raise ConversionError(f"input directory {str(p)!r} holds {len(ckpts)} .ckpt files; pass one of them")
    also = "".join(f", {fmt.files} ({name})" for name, fmt in (formats or {}).items())
    raise ConversionError(
        f"no weights found in {str(p)!r}: expected *.safetensors (+ index), a .ckpt, pytorch_model*.bin{also}"
    )


# ---------------------------------------------------------------------------------------------- FP8 dequant
def dequantize(reader: Reader, ops, dtype: str | None) -> list[tuple[str, str]]:
    """Replace each float8_e4m3fn weight that has a block-scale tensor by a virtual tensor of the dequantised dtype.

    ``ops`` are :class:`mf_ext.convert.spec.Fp8BlockDequant`; ``dtype`` (the requested output dtype, else the
    op's) is what the virtual tensors hold. The scale tensors are consumed (``reader.consumed``). Returns the
    (weight, scale) pairs. Raises for an fp8 weight without its scale or a scale of the wrong shape.
    """
    pairs: list[tuple[str, str]] = []
    if not ops:
        return pairs
    for name in list(reader.tensors):
        info = reader.tensors.get(name)  # None: a scale already taken by its weight
        if info is None or info.dtype != "float8_e4m3fn":
            continue
        for op in ops:
            scale = op.scale_name(name)
            if scale in reader.tensors:
                break
        else:
            raise ConversionError(
                f"tensor {name!r} is float8_e4m3fn but {ops[0].scale_name(name)!r} (its block scales) is not in "
                f"the checkpoint"
            )
        sinfo = reader.tensors[scale]
        if len(info.shape) != 2:
            raise ConversionError(
                f"tensor {name!r}: FP8 block dequantisation needs a 2-D weight, got {list(info.shape)}"
            )
        bo, bi = op.block
        want = (-(-info.shape[0] // bo), -(-info.shape[1] // bi))
        if tuple(sinfo.shape) != want or sinfo.dtype not in dtypes.FLOAT_DTYPES:
            raise ConversionError(
                f"tensor {scale!r} has shape {list(sinfo.shape)} {sinfo.dtype}, but the scales of {name!r} "
                f"{list(info.shape)} in {bo}x{bi} blocks need {list(want)} float32"
            )
        out = dtype or op.dtype
        reader.decoders[name] = _dequant_fn(reader, info, sinfo, (bo, bi), out)
        hint = info.ranges[0][0] if info.ranges else info.offset_hint
        reader.tensors[name] = TensorInfo(name, out, info.shape, info.file, [], hint)
        reader.consumed[scale] = f"block scales of {name!r} (FP8 dequantised to {out})"
        del reader.tensors[scale]
        pairs.append((name, scale))
    return pairs


def _dequant_fn(reader: Reader, winfo: TensorInfo, sinfo: TensorInfo, block: tuple[int, int], out: str):
    name = winfo.name

    def run() -> np.ndarray:
        w = reader._raw_array(name, winfo)  # the stored fp8 bits (the index now shows the virtual tensor)
        s = dtypes.cast(reader._raw_array(sinfo.name, sinfo), sinfo.dtype, "float32", sinfo.name)
        bo, bi = block
        rows, cols = w.shape
        res = np.empty((rows, cols), dtype=dtypes.storage(out))
        # one row of blocks at a time: float32 temporaries stay at bo rows
        for r in range(0, rows, bo):
            vals = dtypes.fp8_e4m3fn_to_f32(w[r : r + bo])
            vals *= np.repeat(s[r // bo], bi)[:cols]
            res[r : r + bo] = vals if out == "float32" else dtypes.cast(vals, "float32", out, name)
        return res

    return run
