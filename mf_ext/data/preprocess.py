"""`mf-ext data`: chat/instruction data → Llama 3 chat template → masked labels → MindRecord rows."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mf_ext.errors import MfExtError, one_line

from .pack import Stats, fit_rows
from .sources import DataError, iter_records, to_messages

EXAMPLES = """examples:
  mf-ext data --register_path research/llama3_1 --input research/llama3_1/demo_data/alpaca_demo.json \\
      --output out/demo.mindrecord --seq_length 256
  mf-ext data --tokenizer HF_DIR --input chats.jsonl --output out.mindrecord --seq_length 2048 --packing pack \\
      --on_error skip
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mf-ext data",
        description=(
            "Turn Alpaca / ShareGPT / OpenAI-messages data (JSON, JSONL, or anything `datasets` reads from local "
            "disk) into a MindRecord of fixed-length rows: `input_ids` and `labels` (int32, seq_length+1 tokens; "
            "the model drops one token when shifting, as MindFormers' LlamaForCausalLM does). Prompt tokens get "
            "label -100 unless --train_on all."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="JSON/JSONL file, .parquet/.csv/.arrow file, or datasets folder")
    p.add_argument("--output", required=True, help="output .mindrecord path (a .db index is written beside it)")
    p.add_argument("--seq_length", type=int, required=True, help="model seq_length; rows hold seq_length+1 tokens")
    p.add_argument("--register_path", action="append", default=None, help="plug-in folder (repeatable)")
    p.add_argument(
        "--config",
        default=None,
        help="YAML holding processor.tokenizer (default: <plugin>/finetune.yaml, else predict.yaml)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer: HF folder (tokenizer.json), a tokenizer.json file, or a tiktoken BPE file for the plug-in",
    )
    p.add_argument("--format", choices=("auto", "alpaca", "sharegpt"), default="auto")
    p.add_argument("--train_on", choices=("responses", "all"), default="responses")
    p.add_argument(
        "--packing",
        choices=("pad", "pack"),
        default="pad",
        help="one sample per row, or several whole samples per row (they attend to earlier samples of the row: no "
        "per-sample attention reset)",
    )
    p.add_argument(
        "--on_error",
        choices=("stop", "skip"),
        default="stop",
        help="malformed JSON line or bad record: stop with its line number (default) or skip and count it",
    )
    p.add_argument("--pad_token_id", type=int, default=None, help="default: tokenizer pad, else eos, else 0")
    return p


def load_data_tokenizer(tokenizer: str | None, register_path: list[str] | None, config: str | None):
    """Resolve the tokenizer for preprocessing.

    * an HF folder or ``tokenizer.json`` → ``transformers`` fast tokenizer (no network, no remote code);
    * any other file (tiktoken BPE) or nothing → the plug-in's tokenizer via ``mf_ext.api.load_tokenizer``
      with the plug-in YAML (``--config``, default ``<register_path>/finetune.yaml`` (else ``predict.yaml``)).
    """
    if tokenizer is not None:
        tp = Path(tokenizer)
        if not tp.exists():
            raise DataError(f"tokenizer path {tokenizer!r} does not exist")
        if tp.is_dir():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(tp), local_files_only=True)
        if tp.suffix == ".json":
            from transformers import PreTrainedTokenizerFast

            return PreTrainedTokenizerFast(tokenizer_file=str(tp))
    register_path = [q for item in register_path or [] for q in str(item).split(",") if q]  # "a,b" or repeated
    if not register_path:
        raise DataError("no tokenizer: pass --tokenizer HF_DIR|tokenizer.json, or --register_path with a plug-in YAML")
    for folder in register_path:
        if not Path(folder).is_dir():
            what = "is not a folder" if Path(folder).exists() else "does not exist"
            raise DataError(f"--register_path: register path {folder!r} {what} (expected a plug-in folder)")
    if config is not None and not Path(config).is_file():
        raise DataError(f"--config: {config!r} does not exist (expected a YAML holding processor.tokenizer)")
    if config is None:
        for name in ("finetune.yaml", "predict.yaml"):
            cand = Path(register_path[0]) / name
            if cand.exists():
                config = str(cand)
                break
        else:
            raise DataError(f"no --config given and no predict.yaml/finetune.yaml in {register_path[0]!r}")
    from mf_ext.api import load_tokenizer

    overrides = {"vocab_file": str(Path(tokenizer).resolve())} if tokenizer is not None else {}
    return load_tokenizer(config=config, register_path=register_path, **overrides)


def _pad_id(tok, explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    for attr in ("pad_token_id", "eos_token_id"):
        v = getattr(tok, attr, None)
        if isinstance(v, int):
            return v
    return 0


def preprocess(
    tokenizer,
    input_path: str | Path,
    output: str | Path,
    seq_length: int,
    *,
    fmt: str = "auto",
    train_on: str = "responses",
    packing: str = "pad",
    on_error: str = "stop",
    pad_token_id: int | None = None,
    progress: bool = True,
) -> Stats:
    """Library entry point of `mf-ext data`; returns the counters. Raises :class:`DataError` on bad input and
    leaves no output behind."""
    from tqdm import tqdm

    from .chat import encode_conversation
    from .mindrecord import write_mindrecord

    if seq_length < 1:
        raise DataError(f"--seq_length must be >= 1, got {seq_length!r}")
    stats = Stats()
    pad = _pad_id(tokenizer, pad_token_id)
    records = iter_records(input_path, on_error=on_error, bad=stats.bad_messages)

    def samples() -> Iterator[tuple[list[int], list[int]]]:
        for rec in tqdm(records, desc="tokenize", unit=" samples", disable=None if progress else True, file=sys.stderr):
            stats.samples_read += 1
            try:
                msgs = to_messages(rec, fmt)
                yield encode_conversation(tokenizer, msgs, train_on=train_on, where=rec.where)
            except DataError as e:
                if on_error == "stop":
                    raise DataError(f"{e}; pass --on_error skip to skip such records") from None
                stats.bad_messages.append(str(e))

    rows = fit_rows(samples(), seq_length + 1, pad, packing, stats)
    try:
        write_mindrecord(rows, output)
    except ValueError as e:
        if isinstance(e, DataError) or str(e) != "no rows to write":
            raise
        raise DataError(
            f"dataset {str(input_path)!r} yielded no usable samples (read {stats.samples_read}, "
            f"bad {len(stats.bad_messages)}, dropped {stats.samples_dropped}); nothing written"
        ) from None
    stats.samples_bad = len(stats.bad_messages)
    return stats


def format_summary(stats: Stats, output: str | Path, seconds: float) -> str:
    total = stats.tokens + stats.padding
    fill = stats.tokens / total if total else 0.0
    lines = [
        f"wrote {stats.rows} rows to {output} (+ .db) in {seconds:.1f} s",
        f"samples: read {stats.samples_read}, written {stats.samples_written}, truncated {stats.samples_truncated}, "
        f"dropped (no target left) {stats.samples_dropped}, skipped (bad) {stats.samples_bad}",
        f"tokens: {stats.tokens} real ({stats.target_tokens} trained), {stats.padding} padding, fill {fill:.1%}",
    ]
    lines += [f"skipped: {m}" for m in stats.bad_messages[:10]]
    if len(stats.bad_messages) > 10:
        lines.append(f"skipped: ... and {len(stats.bad_messages) - 10} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry (`mf-ext data ...`); returns the exit status."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    t0 = time.perf_counter()
    try:
        tok = load_data_tokenizer(args.tokenizer, args.register_path, args.config)
        stats = preprocess(
            tok,
            args.input,
            args.output,
            args.seq_length,
            fmt=args.format,
            train_on=args.train_on,
            packing=args.packing,
            on_error=args.on_error,
            pad_token_id=args.pad_token_id,
        )
    except MfExtError as e:  # DataError, and the config/registry errors of loading the plug-in's tokenizer
        print(f"mf-ext data: error: {one_line(e)}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output, time.perf_counter() - t0))
    return 0
