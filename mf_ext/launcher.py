"""``run_mindformer_ext.py``: MindFormers' ``run_mindformer.py`` flags, plus plug-ins, ``--convert`` and CPU runs.

Argument parsing imports nothing heavy, so ``--help`` is instant; MindSpore / MindFormers load only to run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

RUN_MODES = ("predict", "predict_with_train_model", "finetune", "train", "eval")

EXAMPLES = """\
examples:
  # generate with the embedded demo model (converted from its HF folder on first use, then cached)
  python run_mindformer_ext.py --config research/llama3_1/predict_demo.yaml --register_path research/llama3_1 \\
      --predict_data "The quick brown fox"
  # convert an HF checkpoint as a pre-step, then predict (the tokenizer file comes with the HF folder)
  python run_mindformer_ext.py --config research/llama3_1/predict.yaml --register_path research/llama3_1 \\
      --convert /path/to/Meta-Llama-3.1-8B --processor.tokenizer.vocab_file \\
      /path/to/Meta-Llama-3.1-8B/original/tokenizer.model --predict_data "hello"
  # finetune on a MindRecord dataset made by `mf-ext data`
  python run_mindformer_ext.py --config research/llama3_1/finetune.yaml --register_path research/llama3_1 \\
      --run_mode finetune --convert HF_DIR --train_dataset out.mindrecord
  # perplexity (the YAMLs' `metric: PerplexityMetric`) over a MindRecord from `mf-ext data`, or its JSON input
  python run_mindformer_ext.py --config research/llama3_1/finetune.yaml --register_path research/llama3_1 \\
      --run_mode eval --convert HF_DIR --eval_dataset_dir out.mindrecord
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


def str2bool_or_str(value: str) -> bool | str:
    """run_mindformer.py's ``--resume_training``: true/false, or the name of the checkpoint to resume from."""
    return {"true": True, "false": False}.get(str(value).strip().lower(), value)


def dtype_name(value: str) -> str:
    """The spellings ``mf-ext convert --dtype`` takes (float32/fp32, float16/fp16/half, bfloat16/bf16, ...)."""
    from mf_ext.convert.dtypes import canonical
    from mf_ext.errors import MfExtError

    try:
        name = canonical(value)
    except MfExtError:
        name = None
    if name not in ("float32", "float16", "bfloat16"):
        raise argparse.ArgumentTypeError(f"expected float32, float16 or bfloat16 (or fp32, fp16, bf16), got {value!r}")
    return name


def mode_value(value: str) -> int | str:
    """``--mode``: 0, 1 or auto."""
    v = str(value).strip().lower()
    if v in ("0", "1"):
        return int(v)
    if v == "auto":
        return "auto"
    raise argparse.ArgumentTypeError(f"expected 0 (graph), 1 (PyNative) or auto, got {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the whole usage first)
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="run_mindformer_ext.py",
        description="Run a MindFormers YAML (predict, finetune, train, eval) with plug-in models from --register_path. "
        "A superset of MindFormers' run_mindformer.py: its flags set the same YAML keys; unknown --a.b.c VALUE flags "
        "override YAML keys.",
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
        type=dtype_name,
        help="dtype of the converted weights: float32, float16, bfloat16 (or fp32, fp16, bf16); default: the source's",
    )
    a("--load_checkpoint", default=None, help="MindSpore checkpoint (.ckpt file or folder) to load")
    a("--predict_data", nargs="+", default=None, help="prompt(s) to generate from (YAML input_data)")
    a("--modal_type", nargs="+", default=None, help="modality of each --predict_data item (multi-modal models)")
    a("--max_new_tokens", type=int, default=None, help="tokens to generate per prompt (default: YAML or 64)")
    a("--do_sample", type=str2bool, default=None, help="sample instead of greedy decoding (model_config.do_sample)")
    a("--predict_batch_size", type=int, default=None, help="accepted for compatibility; prompts run one by one")
    a("--adapter_id", nargs="+", default=None, help="LoRA adapter id(s) for predict (SLoRA YAMLs)")
    a(
        "--device_target",
        default=None,
        choices=("CPU", "Ascend", "GPU"),
        help="device (default: YAML context.device_target, CPU where no Ascend is present)",
    )
    a("--device_id", type=int, default=None, help="device id (context.device_id)")
    a(
        "--mode",
        type=mode_value,
        default=None,
        help="0 GRAPH_MODE, 1 PYNATIVE_MODE, or auto: predict picks PyNative when compiling would cost more than "
        "the run (context.mode; predict's default when the YAML sets none: auto)",
    )
    a("--use_parallel", type=str2bool, default=None, help="run data-parallel (start with msrun)")
    a("--output_dir", default=None, help="output folder (checkpoints, logs, results; default: YAML, else ./output)")
    a(
        "--train_dataset",
        "--train_dataset_dir",
        dest="train_dataset",
        default=None,
        help="training data, a MindRecord from `mf-ext data` (train_dataset.data_loader.dataset_dir)",
    )
    a(
        "--eval_dataset_dir",
        default=None,
        help="evaluation data: a MindRecord from `mf-ext data`, or the JSON/JSONL it reads "
        "(eval_dataset.data_loader.dataset_dir)",
    )
    a("--num_samples", type=int, default=None, help="use only this many dataset rows (data_loader.num_samples)")
    a(
        "--resume_training",
        type=str2bool_or_str,
        default=None,
        help="resume from the last checkpoint in output_dir (true), or from the named checkpoint",
    )
    a("--seed", type=int, default=None, help="global random seed")
    a("--epochs", type=int, default=None, help="training epochs (runner_config.epochs)")
    a("--batch_size", type=int, default=None, help="batch size (runner_config.batch_size)")
    a(
        "--gradient_accumulation_steps",
        type=int,
        default=None,
        help="micro-batches per optimizer step (runner_config.gradient_accumulation_steps)",
    )
    a("--sink_mode", type=str2bool, default=None, help="dataset sink mode (runner_config.sink_mode)")
    a("--do_eval", type=str2bool, default=None, help="evaluate during training")
    a(
        "--strategy_load_checkpoint",
        default=None,
        help="parallel strategy file, or a folder holding one (parallel.strategy_ckpt_load_file)",
    )
    a("--src_strategy_path_or_dir", default=None, help="strategy of a distributed load_checkpoint")
    a("--auto_trans_ckpt", type=str2bool, default=None, help="transform load_checkpoint to the parallel layout")
    a("--transform_process_num", type=int, default=None, help="processes for the checkpoint transform")
    a("--only_save_strategy", type=str2bool, default=None, help="exit once strategy files are saved")
    a("--remote_save_url", default=None, help="remote folder outputs are copied to (ModelArts)")
    a("--profile", type=str2bool, default=None, help="run the MindSpore profiler")
    a("--trust_remote_code", type=str2bool, default=None, help="let HF AutoTokenizer run code from the model folder")
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


def _modal_input(data: list[str], modal_type: list[str]) -> list:
    """run_mindformer.py's multi-modal ``input_data``: one query, a list of ``{modality: item}``."""
    from mf_ext.config import ConfigError

    if len(data) != len(modal_type):
        raise ConfigError(
            f"--modal_type: {len(modal_type)} value(s) for {len(data)} --predict_data item(s); give one per item"
        )
    return [[{m.lower(): d} for d, m in zip(data, modal_type, strict=True)]]


def _strategy_file(path: str) -> str:
    """A strategy folder stands for the first ``.ckpt`` in it, as run_mindformer.py intends."""
    from mf_ext.config import ConfigError

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".ckpt")
        if not files:
            raise ConfigError(f"--strategy_load_checkpoint: folder {path!r} holds no .ckpt strategy file")
        return str(files[0])
    return path


def flag_updates(args, cfg: dict) -> dict:
    """run_mindformer.py's flags as ``{dotted YAML key: value}``, on the nested keys run_mindformer.py sets.

    ``cfg`` is the YAML as loaded: ``--num_samples`` goes to the ``data_loader`` of each dataset section it has.
    Values keep the types argparse gave them (never re-parsed as YAML).
    """
    out: dict = {}

    def put(key, value):
        if value is not None:
            out[key] = value

    put("run_mode", args.run_mode)
    put("context.mode", args.mode)
    put("context.device_id", args.device_id)
    put("context.device_target", args.device_target)
    put("do_eval", args.do_eval)
    put("seed", args.seed)
    put("use_parallel", args.use_parallel)
    put("load_checkpoint", args.load_checkpoint)
    put("src_strategy_path_or_dir", args.src_strategy_path_or_dir)
    put("auto_trans_ckpt", args.auto_trans_ckpt)
    put("transform_process_num", args.transform_process_num)
    put("only_save_strategy", args.only_save_strategy)
    put("resume_training", args.resume_training)
    if args.strategy_load_checkpoint is not None:
        out["parallel.strategy_ckpt_load_file"] = _strategy_file(args.strategy_load_checkpoint)
    put("remote_save_url", args.remote_save_url)
    put("profile", args.profile)
    put("train_dataset.data_loader.dataset_dir", args.train_dataset)
    put("eval_dataset.data_loader.dataset_dir", args.eval_dataset_dir)
    put("model.model_config.do_sample", args.do_sample)
    put("model.model_config.max_new_tokens", args.max_new_tokens)
    if args.predict_data is not None:
        data = [d.replace("\\n", "\n") for d in args.predict_data]
        out["input_data"] = _modal_input(data, args.modal_type) if args.modal_type else data
    put("predict_batch_size", args.predict_batch_size)
    put("adapter_id", args.adapter_id)
    put("runner_config.epochs", args.epochs)
    put("runner_config.batch_size", args.batch_size)
    put("runner_config.gradient_accumulation_steps", args.gradient_accumulation_steps)
    put("runner_config.sink_mode", args.sink_mode)
    if args.num_samples is not None:
        for section in ("train_dataset", "eval_dataset"):
            if isinstance((cfg.get(section) or {}).get("data_loader"), dict):
                out[f"{section}.data_loader.num_samples"] = args.num_samples
    put("output_dir", args.output_dir)
    put("trust_remote_code", args.trust_remote_code)
    return out


def _write_atomic(path: Path, text: str) -> None:
    from mf_ext.config import ConfigError

    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"output_dir: cannot write {str(path)!r}: {exc.strerror or exc}") from None


def check_writable_dir(path: Path, what: str) -> None:
    """``path`` (or the nearest folder above it that exists, where it will be created) must be a writable folder.

    Probed by creating a file: ``os.access`` says yes to root on read-only file systems.
    """
    from mf_ext.config import ConfigError

    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what}: {str(probe)!r} is not a folder (expected a writable output folder)")
    try:
        fd, name = tempfile.mkstemp(prefix=".mf_ext_probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(f"{what}: {str(path)!r} is not writable ({exc.strerror or exc})") from None


def _abs(path: str | None) -> str | None:
    """A path flag relative to the current directory, made absolute (so it is not read relative to the YAML)."""
    return str(Path(path).resolve()) if path and Path(path).exists() else path


def _yaml_path(value, yaml_dir: Path) -> Path:
    """A path from the YAML: relative to the YAML's folder when it exists there (as mf_ext.config resolves it)."""
    p = Path(str(value))
    return yaml_dir / p if not p.is_absolute() and (yaml_dir / p).exists() else p


def precheck(args) -> tuple[dict, str, Path]:
    """The checks that need no MindSpore/MindFormers import (those take 7-9 s): the YAML, the register paths, the
    files the flags name, the prompt for predict and a writable output folder. Returns ``(raw YAML, run mode,
    output folder)``."""
    from mf_ext.api import check_hf_dir
    from mf_ext.config import ConfigError, read_yaml
    from mf_ext.registry import parse_register_paths

    raw = read_yaml(args.config)
    parse_register_paths(args.register_path)
    run_mode = args.run_mode or raw.get("run_mode") or "predict"
    if run_mode not in RUN_MODES:
        raise ConfigError(f"run_mode: {run_mode!r} is not one of {', '.join(RUN_MODES)}")
    yaml_dir = Path(args.config).resolve().parent
    convert = args.convert or (None if args.load_checkpoint else raw.get("convert"))
    if convert:
        check_hf_dir(Path(args.convert) if args.convert else _yaml_path(convert, yaml_dir))
    for flag, value in (
        ("--load_checkpoint", args.load_checkpoint),
        ("--train_dataset", args.train_dataset),
        ("--eval_dataset_dir", args.eval_dataset_dir),
    ):
        if value and not Path(value).exists():
            expected = {"--load_checkpoint": "a MindSpore .ckpt file or folder"}.get(
                flag, "a MindRecord from `mf-ext data`"
            )
            raise ConfigError(f"{flag}: {value!r} does not exist (expected {expected})")
    if run_mode in ("predict", "predict_with_train_model"):
        if not args.predict_data and not raw.get("input_data"):
            raise ConfigError("predict needs --predict_data TEXT (or input_data in the YAML)")
        if not (convert or args.load_checkpoint or raw.get("load_checkpoint")) and "base_config" not in raw:
            raise ConfigError(
                "predict needs weights: pass --convert HF_DIR or --load_checkpoint CKPT (or set one in the YAML)"
            )
    out_dir = Path(args.output_dir or raw.get("output_dir") or "./output")
    check_writable_dir(out_dir, "--output_dir" if args.output_dir else "output_dir")
    return raw, run_mode, out_dir


def _prompts(cfg) -> list[str]:
    from mf_ext.config import ConfigError

    data = cfg.get("input_data")
    data = [data] if isinstance(data, str) else list(data or [])
    prompts = []
    for item in data:
        if isinstance(item, (list, tuple)) and all(isinstance(q, dict) for q in item):  # --modal_type query
            kinds = sorted({k for q in item for k in q})
            if kinds != ["text"]:
                raise ConfigError(
                    f"--modal_type: {', '.join(kinds)} input is not supported by run_mindformer_ext.py's text "
                    "generation (text only); multi-modal models need MindFormers' run_mindformer.py on Ascend"
                )
            prompts.append("".join(str(q["text"]) for q in item))
        elif isinstance(item, str):
            prompts.append(item.replace("\\n", "\n"))
        else:
            raise ConfigError(f"input_data: expected text prompts, got {item!r}")
    return prompts


def settle_mode(cfg, model, token_lists: list[list[int]], max_new: int) -> tuple[int, bool, str]:
    """``(mode, eager_prefill, why)`` for predict: the YAML's / ``--mode``'s 0 or 1 as given; ``auto`` (the default)
    by the size of the work (:func:`mf_ext.api.choose_mode`), graph mode when compiled graphs for exactly this model
    and work are in the compile cache. In graph mode MindSpore's compile cache is on, in a folder keyed by everything
    that decides the graphs (:func:`mf_ext.api.compile_cache_dir`; ``MF_EXT_COMPILE_CACHE=0`` turns it off), so a
    second run loads them instead of compiling."""
    from mf_ext import api
    from mf_ext.generation import _PREFILL_CHUNK, _cache_len

    mode = api.parse_mode((cfg.get("context") or {}).get("mode"))
    eager, why = False, "as configured"
    if mode == "auto":
        layers = int(getattr(getattr(model, "spec", None), "num_layers", 0) or getattr(model.config, "num_layers", 1))
        prefill = sum(-(-len(ids) // _PREFILL_CHUNK) for ids in token_lists)
        decode = max(max_new - 1, 0) * len(token_lists)
        mode, eager = api.choose_mode(layers, prefill, decode)
        why = f"auto: {layers} layers x {prefill + decode} calls" + (", prefill eager" if eager else "")
    shapes = list(dict.fromkeys(_cache_len(len(ids) + max_new) for ids in token_lists))
    if mode == 0 and api.compile_cache_enabled():
        cache = api.compile_cache_dir(cfg, model, [shapes, eager])
        if any(cache.rglob("*.mindir")):
            why += ", compiled graphs from the cache"
        api.enable_compile_cache(cache)
    if mode == 1:
        api.set_context(cfg, mode=1)
    return mode, eager, why


def run_predict(cfg, model, tokenizer, prompts: list[str], *, max_new_tokens=None, do_sample=None) -> list[str]:
    """Generate a continuation for each prompt; print and return the full texts."""
    import numpy as np

    from mf_ext.generation import generate

    mc = cfg.model.model_config
    max_new = max_new_tokens or mc.get("max_new_tokens") or 64
    sample = bool(mc.get("do_sample", False)) if do_sample is None else do_sample
    eos = mc.get("eos_token_id", None)
    token_lists = [tokenizer(prompt)["input_ids"] for prompt in prompts]
    mode, eager, why = settle_mode(cfg, model, token_lists, max_new)
    print(f"[mf-ext] {('graph', 'PyNative')[mode]} mode ({why})", file=sys.stderr, flush=True)
    results = []
    for ids in token_lists:
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
            eager_prefill=eager,
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
    """``run_mindformer_ext.py``: returns the exit status (2 and one ``error:`` line for bad input, 130 on Ctrl-C)."""
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ warnings drown the output; errors still show
    from mf_ext.errors import MfExtError, one_line

    try:
        return _run(args)
    except MfExtError as exc:
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (nothing was left half-written)", file=sys.stderr)
        return 130


def _arch_name(cfg) -> str:
    arch = (cfg.get("model") or {}).get("arch") or {}
    return str(arch.get("type") or "the model")


def _run(args) -> int:
    from mf_ext import runtime

    raw, run_mode, out_dir = precheck(args)
    # MindFormers' own Trainer reports its progress as INFO lines: keep those (warnings still go to the log file).
    trainer_log = run_mode in ("finetune", "train") and raw.get("trainer_backend") == "mindformers"
    runtime.prepare_mindformers(out_dir / "log", output_dir=out_dir, info=trainer_log)

    from mf_ext.api import backend_error, build_model_from_config, build_tokenizer_from_config, prepare
    from mf_ext.config import ConfigError

    args.train_dataset, args.eval_dataset_dir = _abs(args.train_dataset), _abs(args.eval_dataset_dir)
    args.load_checkpoint = _abs(args.load_checkpoint)
    cfg, _entries, checkpoint = prepare(
        args.config,
        args.register_path,
        convert=_abs(args.convert),
        checkpoint=args.load_checkpoint,
        overrides=args.overrides,
        dtype=args.convert_dtype,
        flags=lambda yaml_dict: flag_updates(args, yaml_dict),
        in_place=run_mode in ("predict", "predict_with_train_model"),
    )
    run_mode = cfg.get("run_mode") or run_mode
    out_dir = Path(cfg.get("output_dir") or out_dir)
    if run_mode in ("predict", "predict_with_train_model"):
        if args.mode is None and "mode" not in (raw.get("context") or {}):  # not chosen (MindFormers' default 0)
            cfg.setdefault("context", {})["mode"] = "auto"
        prompts = _prompts(cfg)
        if not prompts:
            raise ConfigError("predict needs --predict_data TEXT (or input_data in the YAML)")
        if not checkpoint:  # random weights would only print noise (and an 8B model would not fit in memory)
            raise ConfigError(
                "predict needs weights: pass --convert HF_DIR or --load_checkpoint CKPT (or set one in the YAML)"
            )
        try:
            model = build_model_from_config(cfg, checkpoint=checkpoint)
            tokenizer = build_tokenizer_from_config(cfg)
            texts = run_predict(cfg, model, tokenizer, prompts)
        except RuntimeError as exc:  # a MindSpore kernel the device lacks: one line naming the class and the op
            err = backend_error(exc, _arch_name(cfg))
            if err is None:
                raise
            raise err from None
        _write_atomic(out_dir / "text_generation_result.txt", "\n".join(texts) + "\n")
        return 0
    if run_mode in ("finetune", "train"):
        from mf_ext.train import finetune

        finetune(
            cfg,
            train_dataset=args.train_dataset,
            output_dir=out_dir,
            load_checkpoint=checkpoint,
            resume=cfg.get("resume_training") or False,
            run_mode=run_mode,
        )
        return 0
    # eval: perplexity, as the YAMLs' `metric: PerplexityMetric` asks
    from mf_ext.evaluate import evaluate

    dataset = ((cfg.get("eval_dataset") or {}).get("data_loader") or {}).get("dataset_dir")
    if not dataset:
        raise ConfigError("eval needs data: --eval_dataset_dir X or eval_dataset.data_loader.dataset_dir")
    if not checkpoint:
        raise ConfigError(
            "eval needs weights: pass --convert HF_DIR or --load_checkpoint CKPT (or set one in the YAML)"
        )
    batch = int(
        (cfg.get("eval_dataset") or {}).get("batch_size") or (cfg.get("runner_config") or {}).get("batch_size") or 1
    )
    num_samples = ((cfg.get("eval_dataset") or {}).get("data_loader") or {}).get("num_samples")
    try:
        model = build_model_from_config(cfg, checkpoint=checkpoint)
        result = evaluate(cfg, model, str(dataset), batch_size=batch, num_samples=num_samples)
    except RuntimeError as exc:
        err = backend_error(exc, _arch_name(cfg))
        if err is None:
            raise
        raise err from None
    summary = {"loss": result["loss"], "PPL": result["PPL"]}
    print(summary, flush=True)
    print(
        f"[mf-ext] eval: {result['rows']} rows in {result['batches']} batch(es) of {batch}, "
        f"{result['tokens']} scored tokens ({dataset})",
        file=sys.stderr,
        flush=True,
    )
    _write_atomic(out_dir / "eval_result.json", json.dumps(result, indent=2) + "\n")
    return 0
