"""``run_mindformer_ext.py``: MindFormers' ``run_mindformer.py`` flags, plus plug-ins, ``--convert`` and CPU runs.

Argument parsing imports nothing heavy, so ``--help`` is instant; MindSpore / MindFormers load only to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

RUN_MODES = ("predict", "finetune", "train", "eval")

EXAMPLES = """\
examples:
  # generate with the embedded demo model (converted from its HF folder on first use, then cached)
  python run_mindformer_ext.py --config research/llama3_1/predict_demo.yaml --register_path research/llama3_1 \\
      --predict_data "The quick brown fox"
  # convert an HF checkpoint as a pre-step, then predict
  python run_mindformer_ext.py --config research/llama3_1/predict.yaml --register_path research/llama3_1 \\
      --convert /path/to/Meta-Llama-3.1-8B --predict_data "hello"
  # finetune on a MindRecord dataset made by `mf-ext data`
  python run_mindformer_ext.py --config research/llama3_1/finetune.yaml --register_path research/llama3_1 \\
      --run_mode finetune --convert HF_DIR --train_dataset out.mindrecord
  # any YAML key can be overridden with a dotted flag
  python run_mindformer_ext.py --config X.yaml --register_path research/llama3_1 --model.model_config.seq_length 256
"""


def str2bool(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "y", "on"):
        return True
    if v in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_mindformer_ext.py",
        description="Run a MindFormers YAML (predict, finetune, train, eval) with plug-in models from --register_path. "
        "A superset of MindFormers' run_mindformer.py; unknown --a.b.c VALUE flags override YAML keys.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a("--config", required=True, help="YAML config file (MindFormers layout)")
    a(
        "--register_path",
        action="append",
        default=None,
        help="plug-in folder(s) holding the classes named by auto_register; comma-separated or repeated "
        "(default: $REGISTER_PATH)",
    )
    a("--run_mode", choices=RUN_MODES, default=None, help="task to run (default: the YAML's run_mode, else predict)")
    a(
        "--convert",
        default=None,
        metavar="HF_DIR",
        help="convert this HF checkpoint folder with the plug-in's converter (cached), take the architecture from its "
        "config.json and load the result",
    )
    a(
        "--convert_dtype",
        default=None,
        choices=("float32", "float16", "bfloat16"),
        help="dtype of the converted weights (default: the source dtype)",
    )
    a("--load_checkpoint", default=None, help="MindSpore checkpoint (.ckpt file or folder) to load")
    a("--predict_data", nargs="+", default=None, help="prompt(s) to generate from")
    a("--max_new_tokens", type=int, default=None, help="tokens to generate per prompt (default: YAML or 64)")
    a("--do_sample", type=str2bool, default=None, help="sample instead of greedy decoding (default: YAML)")
    a("--predict_batch_size", type=int, default=None, help="accepted for compatibility; prompts run one by one")
    a(
        "--device_target",
        default=None,
        choices=("CPU", "Ascend", "GPU"),
        help="device (default: YAML context.device_target, CPU where no Ascend is present)",
    )
    a("--device_id", type=int, default=None, help="device id")
    a("--mode", type=int, default=None, choices=(0, 1), help="0 GRAPH_MODE, 1 PYNATIVE_MODE (default: YAML)")
    a("--use_parallel", type=str2bool, default=None, help="run data-parallel (start with msrun)")
    a("--output_dir", default=None, help="output folder (checkpoints, logs, results)")
    a(
        "--train_dataset",
        "--train_dataset_dir",
        dest="train_dataset",
        default=None,
        help="training data (MindRecord from `mf-ext data`)",
    )
    a("--eval_dataset_dir", default=None, help="evaluation data")
    a("--resume_training", type=str2bool, default=None, help="resume from the last checkpoint in output_dir")
    a("--seed", type=int, default=None, help="global random seed")
    a("--epochs", type=int, default=None, help="training epochs")
    a("--batch_size", type=int, default=None, help="batch size")
    a("--do_eval", type=str2bool, default=None, help="evaluate during training")
    a(
        "--options",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="YAML overrides, e.g. model.model_config.seq_length=256",
    )
    return p


def parse_args(argv=None):
    """Parse known flags; the rest must be ``--dotted.key VALUE`` or ``--dotted.key=VALUE`` YAML overrides."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    overrides: list[str] = list(args.options or [])
    i = 0
    while i < len(rest):
        item = rest[i]
        if not item.startswith("--") or len(item) <= 2:
            parser.error(f"unexpected argument {item!r}: YAML overrides are written --section.key VALUE")
        if "=" in item:
            overrides.append(item[2:])
            i += 1
            continue
        if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
            parser.error(f"override {item!r} has no value (expected {item} VALUE)")
        overrides.append(f"{item[2:]}={rest[i + 1]}")
        i += 2
    args.overrides = overrides
    return args


def _flag_overrides(args) -> list[str]:
    """run_mindformer.py's flags, as YAML key overrides."""
    out = []
    pairs = {
        "run_mode": args.run_mode,
        "load_checkpoint": args.load_checkpoint,
        "output_dir": args.output_dir,
        "use_parallel": args.use_parallel,
        "seed": args.seed,
        "resume_training": args.resume_training,
        "do_eval": args.do_eval,
        "context.device_id": args.device_id,
        "context.mode": args.mode,
        "context.device_target": args.device_target,
        "runner_config.epochs": args.epochs,
        "runner_config.batch_size": args.batch_size,
        "eval_dataset.data_loader.dataset_dir": args.eval_dataset_dir,
    }
    for key, value in pairs.items():
        if value is not None:
            out.append(f"{key}={value}")
    return out


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_predict(cfg, model, tokenizer, prompts: list[str], *, max_new_tokens=None, do_sample=None) -> list[str]:
    """Generate a continuation for each prompt; print and return the full texts."""
    import numpy as np

    from mf_ext.generation import generate

    mc = cfg.model.model_config
    max_new = max_new_tokens or mc.get("max_new_tokens") or 64
    sample = bool(mc.get("do_sample", False)) if do_sample is None else do_sample
    eos = mc.get("eos_token_id", None)
    results = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        t0 = time.perf_counter()
        out = generate(
            model,
            np.asarray([ids], dtype=np.int32),
            max_new,
            do_sample=sample,
            top_k=int(mc.get("top_k", 0) or 0),
            top_p=float(mc.get("top_p", 1.0) or 1.0),
            temperature=float(mc.get("temperature", 1.0) or 1.0),
            eos_token_id=eos,
            seed=cfg.get("seed"),
        )
        dt = time.perf_counter() - t0
        new = [int(t) for t in out[0][len(ids) :]]
        text = tokenizer.decode([int(t) for t in out[0]], skip_special_tokens=True)
        results.append(text)
        print(text, flush=True)
        print(
            f"[mf-ext] {len(new)} new tokens in {dt:.2f} s ({len(new) / max(dt, 1e-9):.1f} tokens/s)",
            file=sys.stderr,
            flush=True,
        )
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ warnings drown the output; errors still show
    from mf_ext.errors import MfExtError

    try:
        return _run(args)
    except (MfExtError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def quiet_mindformers() -> None:
    """Keep MindFormers' console logging to errors (its log files keep everything); MF_EXT_VERBOSE=1 shows all.

    MindFormers warns on every run about config sections a predict run does not need and about optional imports;
    those lines buried the generated text. Its import-time warnings are printed before this can run.
    """
    import logging

    if os.environ.get("MF_EXT_VERBOSE", "") not in ("", "0"):
        return
    from mindformers.tools.logger import get_logger

    for handler in get_logger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)


def _run(args) -> int:
    from mf_ext.api import build_model_from_config, build_tokenizer_from_config, prepare
    from mf_ext.config import read_yaml

    # a MindFormers Trainer run reports its progress through MindFormers' log: only predict is quieted
    if (args.run_mode or read_yaml(args.config).get("run_mode") or "predict") == "predict":
        quiet_mindformers()

    overrides = _flag_overrides(args) + args.overrides
    if args.train_dataset and not Path(args.train_dataset).exists():  # before any (slow) conversion
        from mf_ext.config import ConfigError

        raise ConfigError(
            f"--train_dataset: {args.train_dataset!r} does not exist (expected a MindRecord from `mf-ext data`)"
        )
    cfg, _entries, checkpoint = prepare(
        args.config,
        args.register_path,
        convert=args.convert,
        checkpoint=args.load_checkpoint,
        overrides=overrides,
        dtype=args.convert_dtype,
    )
    run_mode = args.run_mode or cfg.get("run_mode") or "predict"
    if run_mode == "predict":
        if not args.predict_data and not cfg.get("input_data"):
            from mf_ext.config import ConfigError

            raise ConfigError("predict needs --predict_data TEXT (or input_data in the YAML)")
        prompts = args.predict_data or cfg.get("input_data")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        prompts = [p.replace("\\n", "\n") for p in prompts]
        if not checkpoint:  # random weights would only print noise (and an 8B model would not fit in memory)
            from mf_ext.config import ConfigError

            raise ConfigError(
                "predict needs weights: pass --convert HF_DIR or --load_checkpoint CKPT (or set one in the YAML)"
            )
        model = build_model_from_config(cfg, checkpoint=checkpoint)
        tokenizer = build_tokenizer_from_config(cfg)
        texts = run_predict(
            cfg, model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, do_sample=args.do_sample
        )
        out_dir = Path(cfg.get("output_dir") or "./output")
        _write_atomic(out_dir / "text_generation_result.txt", "\n".join(texts) + "\n")
        return 0
    if run_mode in ("finetune", "train"):
        from mf_ext.train import finetune

        finetune(
            cfg,
            train_dataset=args.train_dataset,
            output_dir=cfg.get("output_dir") or "./output",
            load_checkpoint=checkpoint,
            resume=bool(cfg.get("resume_training")),
            run_mode=run_mode,
        )
        return 0
    from mf_ext.config import ConfigError

    raise ConfigError(
        f"--run_mode {run_mode!r} is not supported by run_mindformer_ext.py yet (use predict or finetune)"
    )
