"""Write MindRecord so that a crash or a bad input leaves nothing that looks valid at the destination.

A MindRecord file records its own base name in its header and refuses to open once renamed (checked with
mindspore 2.9: "do not rename the mindrecord file"). So we cannot write ``out.tmp`` and rename it. Instead we
write ``out.mindrecord`` + ``out.mindrecord.db`` inside a hidden temporary folder beside the destination (same
file system, same base name) and move both files into place at the end, the ``.db`` index first.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

SCHEMA = {"input_ids": {"type": "int32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]}}


def write_mindrecord(rows: Iterable[tuple[list[int], list[int]]], output: str | Path, chunk: int = 1000) -> int:
    """Write rows to ``output`` (and ``output + '.db'``) atomically; return the number of rows written.

    Raises ``ValueError`` (and leaves no output) when ``rows`` is empty.
    """
    import numpy as np
    from mindspore.mindrecord import FileWriter

    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        tmp = tmp_dir / output.name
        writer = FileWriter(str(tmp), shard_num=1, overwrite=True)
        writer.add_schema(SCHEMA, "mf_ext sft rows")
        n = 0
        buf = []
        for ids, labels in rows:
            buf.append({"input_ids": np.asarray(ids, np.int32), "labels": np.asarray(labels, np.int32)})
            if len(buf) >= chunk:
                writer.write_raw_data(buf)
                n += len(buf)
                buf = []
        if buf:
            writer.write_raw_data(buf)
            n += len(buf)
        if n == 0:
            raise ValueError("no rows to write")
        writer.commit()
        # Replace an older output as a pair: drop its index first so a half-replaced pair cannot look valid.
        db = Path(str(output) + ".db")
        for stale in (output, db):
            if stale.exists():
                stale.unlink()
        os.replace(str(tmp) + ".db", db)
        os.replace(tmp, output)
        return n
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
