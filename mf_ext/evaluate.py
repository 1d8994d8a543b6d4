"""``--run_mode eval``: perplexity of a model over a dataset, as MindFormers' ``PerplexityMetric`` defines it.

MindFormers' metric averages the per-batch loss (each batch's token-mean cross entropy over its labelled tokens)
over the batches and reports ``{"loss": mean, "PPL": exp(mean)}``. Here the loss is the model's own (``model(input_ids,
labels)``, MindFormers' shift: position ``i`` predicts ``labels[i + 1]``, ``-100`` ignored), so it runs on CPU where
MindFormers' evaluation loop (Ascend kernels, sink mode) does not.

Data: a MindRecord made by ``mf-ext data`` (columns ``input_ids`` and ``labels``; a MindRecord with ``input_ids``
only is scored on every token), a folder of them, or the JSON/JSONL ``mf-ext data`` reads, turned into the same rows
with the YAML's tokenizer and ``seq_length``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from mf_ext.config import ConfigError

__all__ = ["perplexity", "eval_files"]

_JSON_SUFFIXES = (".json", ".jsonl")


def eval_files(path: str | os.PathLike) -> list[str]:
    """The MindRecord file(s) of ``path``: a ``.mindrecord`` with its ``.db`` index, or a folder of them."""
    p = Path(path)
    if p.is_dir():
        files = sorted(str(f) for f in p.glob("*.mindrecord"))
        if not files:
            raise ConfigError(f"eval_dataset.data_loader.dataset_dir: folder {str(p)!r} holds no *.mindrecord")
        return files
    if not p.exists():
        raise ConfigError(f"eval_dataset.data_loader.dataset_dir: {str(p)!r} does not exist")
    if not Path(str(p) + ".db").exists():
        raise ConfigError(
            f"eval_dataset.data_loader.dataset_dir: {str(p)!r} is neither JSON/JSONL nor a MindRecord with its "
            f"{p.name + '.db'!r} index beside it (expected a file written by `mf-ext data`)"
        )
    return [str(p)]


def _batches(files: list[str], batch_size: int, num_samples: int | None):
    import mindspore.dataset as ds

    try:
        columns = ds.MindDataset(files, shuffle=False).get_col_names()
    except Exception as e:  # MindSpore raises RuntimeError with a multi-line C++ trace: keep the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"eval dataset {files[0]!r} cannot be read as MindRecord: {first}") from None
    if "input_ids" not in columns:
        raise ConfigError(f"eval dataset {files[0]!r} has no input_ids column (columns: {', '.join(columns)})")
    wanted = ["input_ids", "labels"] if "labels" in columns else ["input_ids"]
    kw = {"num_samples": num_samples} if num_samples else {}
    data = ds.MindDataset(files, columns_list=wanted, shuffle=False, **kw).batch(batch_size, drop_remainder=False)
    for row in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
        ids = row[0]
        yield ids, (row[1] if len(row) > 1 else ids)


def perplexity(model, files: list[str], *, batch_size: int = 1, num_samples: int | None = None) -> dict:
    """``{"loss", "PPL", "batches", "rows", "tokens"}`` of ``model`` over MindRecord ``files`` (PerplexityMetric)."""
    import mindspore as ms

    losses: list[float] = []
    rows = tokens = 0
    for ids, labels in _batches(files, batch_size, num_samples):
        out = model(ms.Tensor(ids.astype(np.int32)), ms.Tensor(labels.astype(np.int32)))
        value = out.asnumpy() if hasattr(out, "asnumpy") else None
        if value is None or value.size != 1:
            raise ConfigError(
                f"--run_mode eval: {type(model).__name__}(input_ids, labels) returned no scalar loss; perplexity "
                "needs a model that computes its loss from labels"
            )
        losses.append(float(value.reshape(())))
        rows += ids.shape[0]
        tokens += int((labels[:, 1:] != -100).sum())
    if not losses:
        raise ConfigError(f"eval dataset {files[0]!r} holds no rows")
    mean = float(np.mean(losses))
    return {"loss": mean, "PPL": math.exp(mean), "batches": len(losses), "rows": rows, "tokens": tokens}


def json_to_mindrecord(cfg, json_path: Path, out_dir: Path) -> list[str]:
    """Turn JSON/JSONL chat or instruction data into ``mf-ext data`` rows (the YAML's tokenizer and seq_length)."""
    from mf_ext.api import build_tokenizer_from_config
    from mf_ext.data.preprocess import preprocess

    seq = int(cfg.model.model_config.get("seq_length") or 0)
    if seq < 1:
        raise ConfigError("model.model_config.seq_length: needed to cut JSON eval data into rows")
    out = out_dir / "eval.mindrecord"
    preprocess(build_tokenizer_from_config(cfg), json_path, out, seq, progress=False)
    return [str(out)]


def evaluate(cfg, model, dataset: str, *, batch_size: int, num_samples: int | None = None) -> dict:
    """Perplexity of ``model`` over ``dataset`` (MindRecord file/folder, or JSON/JSONL for the YAML's tokenizer)."""
    path = Path(dataset)
    if path.suffix.lower() in _JSON_SUFFIXES:
        if not path.is_file():
            raise ConfigError(f"eval_dataset.data_loader.dataset_dir: {dataset!r} does not exist")
        with tempfile.TemporaryDirectory(prefix="mf_ext_eval-") as tmp:
            files = json_to_mindrecord(cfg, path, Path(tmp))
            return perplexity(model, files, batch_size=batch_size, num_samples=num_samples)
    return perplexity(model, eval_files(path), batch_size=batch_size, num_samples=num_samples)
