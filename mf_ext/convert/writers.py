"""Streaming writers: MindSpore ``.ckpt``, and safetensors directories (MindSpore- or HF-named) with an index.

All writers write under a temporary name next to the destination and rename on :meth:`Writer.commit`; on
:meth:`Writer.abort` (or a crash) nothing that looks like a valid output is left at the destination.
Tensor payloads are either numpy arrays or :class:`RawCopy` byte ranges of a source file, which are moved with
``os.copy_file_range`` (no user-space copy: pure renames run at ``cp`` speed and cost no anonymous memory).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mf_ext.convert import dtypes
from mf_ext.convert.errors import ConversionError

CKPT_SLICE_BYTES = 512 * 2**20
# fsync before the final rename makes the output survive power loss, at the price of waiting for the disk;
# like cp, torch.save and mindspore.save_checkpoint we do not by default (a killed process is covered either way)
FSYNC = (
    os.environ.get("MF_EXT_CONVERT_FSYNC", "0") == "1"
)  # MindSpore slices tensors above 512 MiB into several values of one tag
_COPY_CHUNK = 64 * 2**20  # user-space copies (fallback path, array writes)
_KERNEL_CHUNK = 2**30  # copy_file_range request size
# Kernel copies run ~30% faster when source and destination offsets are congruent modulo the page size, so
# writers place raw-copied tensors at such offsets (padding the safetensors header; a skipped protobuf field in
# a .ckpt). Small tensors are not worth the padding.
PAGE = 4096
ALIGN_MIN_BYTES = 1 << 20


@dataclass
class RawCopy:
    """Bytes ``[offset, offset+length)`` of ``file``, possibly several ranges (ckpt slices)."""

    file: Path
    ranges: list[tuple[int, int]]


@dataclass
class Target:
    name: str
    dtype: str
    shape: tuple[int, ...]
    src_file: Path | None = None  # set when the bytes will be copied from this file unchanged (placement hint)

    @property
    def nbytes(self) -> int:
        n = dtypes.itemsize(self.dtype)
        for d in self.shape:
            n *= d
        return n


class _FdCopier:
    """Copies byte ranges between files with ``copy_file_range``, falling back to ``sendfile``/read+write."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}
        self._fast = hasattr(os, "copy_file_range")

    def src(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        return fd

    def copy(self, path: Path, offset: int, length: int, dst_fd: int, progress=None) -> None:
        sfd = self.src(path)
        while length > 0:
            n = min(length, _COPY_CHUNK)
            done = 0
            if self._fast:
                try:  # in-kernel copy: no user buffer, so big requests cost no memory
                    done = os.copy_file_range(sfd, dst_fd, min(length, _KERNEL_CHUNK), offset)
                except OSError:
                    self._fast = False
                    done = 0
            if not self._fast:
                buf = os.pread(sfd, n, offset)
                done = _write_all(dst_fd, buf)
            if done <= 0:
                raise ConversionError(f"unexpected end of {str(path)!r} at byte {offset} (file truncated?)")
            offset += done
            length -= done
            if progress is not None:
                progress(done)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _chunks(payload):
    """Byte views of a payload: one array, or an iterable of arrays produced one after another (a fused or
    cast tensor is built chunk by chunk so memory stays at one chunk)."""
    parts = [payload] if isinstance(payload, np.ndarray) else payload
    for a in parts:
        yield memoryview(np.ascontiguousarray(a)).cast("B")


def _check_size(target: Target, done: int) -> None:
    if done != target.nbytes:
        raise ConversionError(f"internal: tensor {target.name!r} produced {done} bytes, expected {target.nbytes}")


def _sync(fd: int) -> None:
    if FSYNC:
        os.fsync(fd)


def _write_all(fd: int, data) -> int:
    view = memoryview(data).cast("B")
    total = len(view)
    pos = 0
    while pos < total:
        pos += os.write(fd, view[pos : pos + _COPY_CHUNK])  # OSError (disk full...) is reported by the engine
    return total


def _open_out(path: Path, shown: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise ConversionError(f"cannot write output {str(shown)!r}: {e.strerror}") from None


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: Path) -> None:
    """Remove temporaries of ``path`` left by a killed conversion (their writer process is gone)."""
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


class Writer:
    """Base writer. Subclasses implement ``begin(targets)``, ``write(target, payload)``, and the commit rename."""

    def __init__(self, progress=None) -> None:
        self._copier = _FdCopier()
        self._progress = progress
        self.bytes_written = 0

    def _emit(self, fd: int, payload, target: Target) -> None:
        if isinstance(payload, RawCopy):
            for off, n in payload.ranges:
                self._copier.copy(payload.file, off, n, fd, self._tick)
            return
        done = 0
        for chunk in _chunks(payload):
            _write_all(fd, chunk)
            self._tick(len(chunk))
            done += len(chunk)
        _check_size(target, done)

    def _tick(self, n: int) -> None:
        self.bytes_written += n
        if self._progress is not None:
            self._progress(n)

    def close(self) -> None:
        self._copier.close()

    def _make_parents(self) -> None:
        """Create the output's missing parent folders (``mkdir -p``), remembered so a failure removes them again."""
        missing, parent = [], self.path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        self._created: list[Path] = []
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except OSError as e:
                self._remove_parents()
                raise ConversionError(f"cannot create output folder {str(folder)!r}: {e.strerror or e}") from None
            self._created.append(folder)

    def _remove_parents(self) -> None:
        for folder in reversed(getattr(self, "_created", [])):
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else wrote there): leave it
                break
        self._created = []


# ---------------------------------------------------------------------------------------------- .ckpt
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field_no: int, payload_len: int) -> bytes:
    """Key + length prefix of a length-delimited protobuf field."""
    return _varint((field_no << 3) | 2) + _varint(payload_len)


def ckpt_value_header(name: str, ms_type: str, shape: tuple[int, ...], content_len: int) -> bytes:
    """Bytes of one ``Checkpoint.value`` entry up to (not including) its ``tensor_content`` bytes."""
    tag = name.encode()
    dims = b"".join(b"\x08" + _varint(d) for d in (shape or (0,)))  # MindSpore writes scalars as dims=[0]
    ttype = ms_type.encode()
    tensor_head = dims + _ld(2, len(ttype)) + ttype + _ld(3, content_len)
    tensor_len = len(tensor_head) + content_len
    value_head = _ld(1, len(tag)) + tag + _ld(2, tensor_len)
    value_len = len(value_head) + tensor_len
    return _ld(1, value_len) + value_head + tensor_head


def ckpt_padding(n: int) -> bytes:
    """``n`` bytes (0 or >= 2) forming a ``Checkpoint`` field that parsers skip: field 15, length-delimited.

    Field 15 is not in MindSpore's ``checkpoint.proto``; protobuf parsers keep unknown fields aside and
    ``mindspore.load_checkpoint`` only reads ``value``, so the padding changes no tensor.
    """
    if n == 0:
        return b""
    if n in (1, 130):  # no exact encoding of this length: go one page further
        n += PAGE
    body = n - 2 if n - 2 < 128 else n - 3
    out = b"\x7a" + _varint(body) + b"\x00" * body
    assert len(out) == n
    return out


class CkptWriter(Writer):
    """Writes a MindSpore ``.ckpt`` tensor by tensor (protobuf messages concatenate)."""

    def __init__(self, path: Path, progress=None, sidecars: dict[Path, object] | None = None) -> None:
        super().__init__(progress)
        self.path = Path(path)
        self.tmp = _tmp_name(self.path)
        self.fd: int | None = None
        self.sidecars = dict(sidecars or {})  # JSON files written beside the .ckpt on commit
        self.pos = 0  # bytes written so far

    def _put(self, data) -> None:
        self.pos += _write_all(self.fd, data)

    def begin(self, targets: list[Target]) -> None:
        if self.path.is_dir():
            raise ConversionError(f"output path {str(self.path)!r} is a directory; expected a .ckpt file path")
        self._make_parents()
        clean_stale(self.path)
        self.fd = _open_out(self.tmp, self.path)

    def write(self, target: Target, payload) -> None:
        ms_type = dtypes.to_mindspore(target.dtype)
        total = target.nbytes
        item = dtypes.itemsize(target.dtype)
        # slice like MindSpore does for huge tensors, on element boundaries
        step = max(item, CKPT_SLICE_BYTES // item * item)
        if isinstance(payload, RawCopy) or total == 0:
            for start in range(0, max(total, 1), step):
                n = min(step, total - start)
                head = ckpt_value_header(target.name, ms_type, target.shape, n)
                if isinstance(payload, RawCopy) and n >= ALIGN_MIN_BYTES:
                    src_off = _subrange(payload.ranges, start, n)[0][0]
                    self._put(ckpt_padding((src_off - self.pos - len(head)) % PAGE))
                self._put(head)
                if n:
                    self._emit(
                        self.fd,
                        RawCopy(payload.file, _subrange(payload.ranges, start, n))
                        if isinstance(payload, RawCopy)
                        else payload,
                        Target(target.name, "uint8", (n,)),
                    )
                    self.pos += n
            return
        left_in_slice = done = 0
        for mv in _chunks(payload):
            pos = 0
            while pos < len(mv):
                if left_in_slice == 0:  # start the next value of this tag
                    left_in_slice = min(step, total - done)
                    self._put(ckpt_value_header(target.name, ms_type, target.shape, left_in_slice))
                k = min(left_in_slice, len(mv) - pos)
                self._put(mv[pos : pos + k])
                self._tick(k)
                pos += k
                done += k
                left_in_slice -= k
        _check_size(target, done)

    def commit(self) -> None:
        _sync(self.fd)
        os.close(self.fd)
        self.fd = None
        for p, obj in self.sidecars.items():
            write_json_atomic(p, obj)
        os.replace(self.tmp, self.path)  # last: the weights appear only when everything else is in place
        self.close()

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.tmp.unlink(missing_ok=True)
        self._remove_parents()
        self.close()


def _subrange(ranges: list[tuple[int, int]], start: int, n: int) -> list[tuple[int, int]]:
    out, pos = [], 0
    for off, length in ranges:
        a, b = max(start, pos), min(start + n, pos + length)
        if a < b:
            out.append((off + a - pos, b - a))
        pos += length
    return out


# ---------------------------------------------------------------------------------------------- safetensors dir
class SafetensorsDirWriter(Writer):
    """A directory of safetensors shards (+ ``model.safetensors.index.json``); extra JSON files on commit.

    Headers need every offset up front, which the plan provides: ``begin`` receives all targets in write order.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_shard_bytes: int = 5 * 2**30,
        metadata: dict | None = None,
        single_name: str = "model.safetensors",
        always_index: bool = False,
        extra_files: dict[str, object] | None = None,
        progress=None,
    ) -> None:
        super().__init__(progress)
        self.path = Path(path)
        self.tmp = _tmp_name(self.path)
        self.max_shard_bytes = max_shard_bytes
        self.metadata = metadata or {}
        self.single_name = single_name
        self.always_index = always_index
        self.extra_files = dict(extra_files or {})
        self._shard_of: dict[str, int] = {}
        self._shards: list[list[Target]] = []
        self._fd: int | None = None
        self._cur = -1

    def begin(self, targets: list[Target]) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConversionError(f"output path {str(self.path)!r} exists and is not a directory")
        self._make_parents()
        clean_stale(self.path)
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            self.tmp.mkdir()
        except OSError as e:
            raise ConversionError(f"cannot write output {str(self.path)!r}: {e.strerror}") from None
        self._shards = assign_shards(targets, self.max_shard_bytes)
        self.shard_names = shard_names(len(self._shards), self.single_name)
        for i, shard in enumerate(self._shards):
            for t in shard:
                self._shard_of[t.name] = i

    def _open_shard(self, i: int, first_payload=None) -> None:
        if self._fd is not None:
            _sync(self._fd)
            os.close(self._fd)
        self._fd = _open_out(self.tmp / self.shard_names[i], self.path)
        self._cur = i
        header: dict = {"__metadata__": {str(k): str(v) for k, v in self.metadata.items()}} if self.metadata else {}
        pos = 0
        for t in self._shards[i]:
            header[t.name] = {
                "dtype": dtypes.to_safetensors(t.dtype),
                "shape": list(t.shape),
                "data_offsets": [pos, pos + t.nbytes],
            }
            pos += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned
        if isinstance(first_payload, RawCopy) and pos >= ALIGN_MIN_BYTES:
            # header padding (spaces, allowed by the format) puts the data at the source's page offset
            want = first_payload.ranges[0][0] % PAGE
            raw += b" " * ((want - 8 - len(raw)) % PAGE // 8 * 8)
        _write_all(self._fd, struct.pack("<Q", len(raw)) + raw)

    def write(self, target: Target, payload) -> None:
        i = self._shard_of[target.name]
        if i != self._cur:
            self._open_shard(i, payload)
        self._emit(self._fd, payload, target)

    def commit(self) -> None:
        for i in range(self._cur + 1, len(self._shards)):  # empty model: still write the (empty) shard
            self._open_shard(i)
        if self._fd is not None:
            _sync(self._fd)
            os.close(self._fd)
            self._fd = None
        if len(self._shards) > 1 or self.always_index:
            weight_map = {t.name: self.shard_names[i] for i, s in enumerate(self._shards) for t in s}
            total = sum(t.nbytes for s in self._shards for t in s)
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            self.extra_files.setdefault("model.safetensors.index.json", index)
        for fname, content in self.extra_files.items():
            data = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
            (self.tmp / fname).write_text(data)
        replace_dir(self.tmp, self.path)
        self.close()

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._remove_parents()
        self.close()


def assign_shards(targets: list[Target], max_shard_bytes: int) -> list[list[Target]]:
    """Split targets (in write order) into shards of at most ``max_shard_bytes`` (one bigger tensor alone).

    A new shard also starts where copied bytes begin to come from another source file: inside one shard the
    tensors then keep their source offsets modulo the page size (see PAGE), and the output mirrors the input's
    sharding.
    """
    shards: list[list[Target]] = []
    cur: list[Target] = []
    size = 0
    for t in targets:
        new_src = bool(cur) and t.src_file is not None and cur[-1].src_file not in (None, t.src_file)
        if cur and (size + t.nbytes > max_shard_bytes or new_src):
            shards.append(cur)
            cur, size = [], 0
        cur.append(t)
        size += t.nbytes
    if cur or not shards:
        shards.append(cur)
    return shards


def shard_names(n: int, single_name: str = "model.safetensors") -> list[str]:
    return [single_name] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move finished ``tmp`` to ``dest``; an existing ``dest`` is moved aside first and removed afterwards."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: Path, obj) -> None:
    tmp = _tmp_name(path)
    try:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    except OSError as e:
        raise ConversionError(f"cannot write {str(path)!r}: {e.strerror}") from None
    os.replace(tmp, path)
