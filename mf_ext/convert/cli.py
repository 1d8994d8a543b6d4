"""``mf-ext convert``: HF <-> MindSpore weight conversion from the command line.

Subcommands (jsonargparse, validated with pydantic; every flag also from ``--config args.yaml`` or an environment
variable ``MF_EXT_CONVERT_<SUBCOMMAND>__<FLAG>``; ``--print_config`` writes the YAML):

  hf_to_ms   HF folder (safetensors / .bin / Meta .pth) -> MindSpore .ckpt or MindSpore-named safetensors folder
  ms_to_hf   MindSpore .ckpt / safetensors folder -> HF folder (safetensors + index + config.json)
  resplit    re-shard / re-format a checkpoint without renaming (ckpt <-> safetensors, shard size, dtype)

MindFormers' documented flags work as-is:
  mf-ext convert --model llama --input_path HF_DIR --output_path llama.ckpt --dtype fp16 [--reversed]

Heavy imports (numpy, torch, MindSpore) happen only after argument parsing, so ``--help`` is fast.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Literal

from mf_ext.errors import MfExtError, one_line

EXAMPLES = """examples:
  mf-ext convert hf_to_ms --model llama --input_path Llama-3.1-8B --output_path out/llama3_1_8b.ckpt
  mf-ext convert hf_to_ms --model qwen2 --input_path Qwen2-0.5B --output_path out/qwen2 --format safetensors \\
      --qkv_concat --dtype bfloat16
  mf-ext convert hf_to_ms --register_path research/llama3_1 --input_path HF_DIR --output_path x.ckpt --dry-run
  mf-ext convert ms_to_hf --model llama --input_path out/llama3_1_8b.ckpt --output_path hf_out
  mf-ext convert resplit --input_path out/llama3_1_8b.ckpt --output_path out/st --format safetensors
  mf-ext convert --model llama --input_path HF_DIR --output_path llama.ckpt --dtype fp16      # MindFormers flags
"""

DTYPES = ("float32", "float16", "bfloat16", "fp32", "fp16", "bf16")
SUBCOMMANDS = ("hf_to_ms", "ms_to_hf", "resplit")
ENV_PREFIX = "MF_EXT_CONVERT"


class CliError(MfExtError):
    pass


# ---------------------------------------------------------------------------------------------- validation
def _models():
    from pydantic import BaseModel, ConfigDict, field_validator, model_validator

    class _Base(BaseModel):
        model_config = ConfigDict(extra="forbid")

        input_path: str
        output_path: str
        dtype: Literal[DTYPES] | None = None  # type: ignore[valid-type]
        dry_run: bool = False
        progress: bool = True
        max_shard_size: str = "5GB"

        @field_validator("max_shard_size")
        @classmethod
        def _size(cls, v: str) -> str:
            parse_size(v)
            return v

        @field_validator("input_path", "output_path")
        @classmethod
        def _nonempty(cls, v: str) -> str:
            if not v.strip():
                raise ValueError("must not be empty")
            return v

    class _WithModel(_Base):
        model: str | None = None
        register_path: str | None = None
        hf_config: str | None = None

        @model_validator(mode="after")
        def _one_source(self):
            if self.model and self.register_path:
                raise ValueError("give one of --model NAME or --register_path DIR, not both")
            return self

    class HfToMs(_WithModel):
        format: Literal["ckpt", "safetensors"] = "ckpt"
        qkv_concat: bool = False

    class MsToHf(_WithModel):
        ms_config: str | None = None
        qkv_concat: bool | None = None
        lora_output: str | None = None
        lora_alpha: float = 16

    class Resplit(_Base):
        format: Literal["ckpt", "safetensors"] = "safetensors"

    return {"hf_to_ms": HfToMs, "ms_to_hf": MsToHf, "resplit": Resplit}


def parse_size(v: str | int) -> int:
    """``"5GB"``, ``"500MB"``, ``"20KB"``, ``"1000"`` -> bytes (decimal units, like transformers)."""
    if isinstance(v, int):
        return v
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", str(v), re.IGNORECASE)
    if not m:
        raise ValueError(f"size {v!r} is not like '5GB', '500MB' or '1000'")
    num, unit = float(m.group(1)), (m.group(2) or "B").upper()
    base = 1024 if "I" in unit else 1000
    power = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[0]]
    return int(num * base**power)


# ---------------------------------------------------------------------------------------------- parser
def _parser():
    import argparse

    from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser, DefaultHelpFormatter

    class Fmt(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """Keep the examples' line breaks."""

    def ArgumentParser(*a, _cls=ArgumentParser, **k):  # noqa: N802 -- same name, one formatter everywhere
        # exit_on_error=False: errors come back as exceptions, reported by main() on one line
        return _cls(*a, formatter_class=Fmt, exit_on_error=False, **k)

    top = ArgumentParser(
        prog="mf-ext convert",
        description=re.sub(r"``(.+?)``", r"\1", "\n\n".join(__doc__.split("\n\n")[1:4])),  # no RST in --help
        epilog=EXAMPLES,
        default_env=True,
        env_prefix=ENV_PREFIX,
    )
    subs = top.add_subcommands(dest="subcommand", required=True)

    def common(p, model: bool):
        p.add_argument("--config", action=ActionConfigFile, help="YAML holding any of these flags")
        if model:
            p.add_argument(
                "--model",
                type=str | None,
                default=None,
                help="model name of a built-in or installed family (llama, qwen2, ...; see mf-ext models); default: "
                "the family that reads the checkpoint's config.json architectures",
            )
            p.add_argument(
                "--register_path",
                type=str | None,
                default=None,
                help="plug-in folder whose convert_weight.py / convert_reversed.py to use",
            )
        p.add_argument("--input_path", type=str, required=True, help="source checkpoint file or folder")
        p.add_argument("--output_path", type=str, required=True, help="destination file or folder")
        p.add_argument(
            "--dtype", type=str | None, default=None, help=f"output dtype {DTYPES}; default: keep the source dtype"
        )
        p.add_argument(
            "--dry_run",
            action=ActionYesNo,
            default=False,
            help="plan from headers, print it, write nothing (also --dry-run)",
        )
        p.add_argument("--progress", action=ActionYesNo, default=True, help="progress bar (bytes)")
        p.add_argument("--max_shard_size", type=str, default="5GB", help="safetensors shard size, e.g. 5GB")

    p = ArgumentParser(
        description="HF checkpoint -> MindSpore checkpoint", epilog=EXAMPLES, default_env=True, env_prefix=ENV_PREFIX
    )
    common(p, True)
    p.add_argument(
        "--format",
        type=Literal["ckpt", "safetensors"],
        default="ckpt",
        help="ckpt: one MindSpore .ckpt file; safetensors: folder of MindSpore-named shards + index",
    )
    p.add_argument(
        "--qkv_concat",
        action=ActionYesNo,
        default=False,
        help="fuse q,k,v -> attention.w_qkv and gate,up -> feed_forward.w_gate_hidden",
    )
    p.add_argument("--hf_config", type=str | None, default=None, help="config.json to use instead of the input's")
    subs.add_subcommand("hf_to_ms", p, help="HF -> MindSpore (.ckpt or safetensors)")

    p = ArgumentParser(
        description="MindSpore checkpoint -> HF folder", epilog=EXAMPLES, default_env=True, env_prefix=ENV_PREFIX
    )
    common(p, True)
    p.add_argument(
        "--hf_config",
        type=str | None,
        default=None,
        help="HF config.json (default: the one hf_to_ms kept beside the input)",
    )
    p.add_argument(
        "--ms_config",
        type=str | None,
        default=None,
        help="MindFormers model YAML to derive config.json from (--config model.yaml also works)",
    )
    p.add_argument("--qkv_concat", type=bool | None, default=None, help="default: detected from tensor names")
    p.add_argument(
        "--lora_output",
        type=str | None,
        default=None,
        help="PEFT adapter folder for LoRA tensors in the input (default: <output_path>_lora)",
    )
    p.add_argument("--lora_alpha", type=float, default=16, help="LoRA alpha used in training (not stored in ckpt)")
    subs.add_subcommand("ms_to_hf", p, help="MindSpore -> HF folder (safetensors + config.json)")

    p = ArgumentParser(
        description="re-shard or re-format a checkpoint, names unchanged",
        epilog=EXAMPLES,
        default_env=True,
        env_prefix=ENV_PREFIX,
    )
    common(p, False)
    p.add_argument("--format", type=Literal["ckpt", "safetensors"], default="safetensors", help="output format")
    subs.add_subcommand("resplit", p, help="ckpt <-> safetensors, shard size, dtype; names unchanged")
    return top


def _normalise(argv: list[str]) -> list[str]:
    """Accept ``--dry-run``-style spellings and ``--flag=value``; turn ``--config MODEL.yaml`` (a MindFormers
    model YAML, recognised by ``model.model_config``) into ``--ms_config`` for ms_to_hf."""
    out = []
    for a in argv:
        if a.startswith("--") and "-" in a[2:].split("=")[0]:
            head, sep, tail = a.partition("=")
            a = "--" + head[2:].replace("-", "_") + sep + tail
        out.append(a)
    for i, a in enumerate(out[:-1]):
        if a == "--config" and _is_mindformers_yaml(out[i + 1]):
            out[i] = "--ms_config"
    return out


def _is_mindformers_yaml(path: str) -> bool:
    try:
        import yaml

        data = yaml.safe_load(Path(path).read_text())
    except Exception:  # noqa: BLE001 -- not readable as YAML: let jsonargparse report it
        return False
    return isinstance(data, dict) and isinstance(data.get("model"), dict) and "model_config" in data["model"]


# ---------------------------------------------------------------------------------------------- run
def _plugin(
    model: str | None,
    register_path: str | None,
    input_path: str | None = None,
    hf_config: str | None = None,
    sub: str = "hf_to_ms",
):
    """The family folder: ``--model`` (a family's model name), ``--register_path``, else the family that reads the
    source's ``config.json`` (``--hf_config``; the HF folder for hf_to_ms; the one kept beside a MindSpore
    checkpoint for ms_to_hf)."""
    import json

    from mf_ext import registry

    if model:
        return registry.plugin_for_model(model)
    if register_path:
        return registry.load_plugin(register_path)
    if hf_config:
        cfg_file = Path(hf_config)
    elif input_path is None:
        raise CliError("pass --model NAME (see mf-ext models) or --register_path DIR")
    elif sub == "hf_to_ms":
        cfg_file = Path(input_path) / "config.json"
    else:
        from mf_ext.convert.engine import find_source_config

        found = find_source_config(input_path)
        cfg_file = Path(found) if found is not None else Path(str(input_path) + ".config.json")
    if not cfg_file.is_file():
        raise CliError(
            f"no --model or --register_path, and no config.json to pick the family from ({str(cfg_file)!r} does "
            "not exist): pass --model NAME (see mf-ext models) or --register_path DIR"
        )
    try:
        hf = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{str(cfg_file)!r} is not valid JSON ({exc})") from None
    if not isinstance(hf, dict):
        raise CliError(f"{str(cfg_file)!r}: expected a JSON object, got {type(hf).__name__}")
    return registry.family_for_hf_config(hf)


def _mindformers_convention(ns, direction: str) -> bool:
    """Whether the plug-in ``--model`` / ``--register_path`` names has a converter written for MindFormers."""
    from mf_ext.convert.plugin_call import convention, converter_file

    plugin = _plugin(ns.model, ns.register_path)
    if not converter_file(plugin, direction).is_file():
        return False
    fn = plugin.convert_ms_to_pt if direction == "ms_to_hf" else plugin.convert_pt_to_ms
    return convention(plugin, fn) == "mindformers"


def _run(sub: str, args) -> int:
    from mf_ext.convert.errors import ConversionError

    kw = dict(
        dtype=args.dtype,
        dry_run=args.dry_run,
        progress=args.progress and sys.stderr.isatty(),
        max_shard_bytes=parse_size(args.max_shard_size),
    )
    if sub == "resplit":
        from mf_ext.convert.resplit import resplit

        result = resplit(args.input_path, args.output_path, format=args.format, **kw)
    else:
        from mf_ext.convert.plugin_call import call_converter

        plugin = _plugin(args.model, args.register_path, args.input_path, args.hf_config, sub)
        if sub == "hf_to_ms":
            kw.update(format=args.format, qkv_concat=args.qkv_concat, hf_config=args.hf_config)
        else:
            kw.update(
                hf_config=args.hf_config,
                ms_config=args.ms_config,
                qkv_concat=args.qkv_concat,
                lora_output=args.lora_output,
                lora_alpha=args.lora_alpha,
            )
        # a folder written for MindFormers' convert_weight.py is called with its conventions (MindSpore dtype, only
        # the arguments its signature takes); what it cannot honour (--dry-run, --qkv_concat ...) is refused
        result = call_converter(plugin, sub, args.input_path, args.output_path, **kw)
    if args.dry_run:
        return 0
    if result is None or not hasattr(result, "summary"):
        if not Path(args.output_path).exists():
            raise ConversionError(f"the plug-in's converter returned without writing {args.output_path!r}")
        print(f"done: {args.output_path}")
        return 0
    print(result.summary())
    return 0


def _legacy(argv: list[str]) -> int:
    """MindFormers' ``convert_weight.py`` flags: ``--model --input_path --output_path --dtype [--reversed]``."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line via main(), not argparse's usage dump
            raise CliError(
                f"{message} (MindFormers-style flags: --model --input_path --output_path [--dtype] [--reversed])"
            )

    p = Parser(
        prog="mf-ext convert",
        description="MindFormers-compatible flags",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None)
    p.add_argument("--register_path", default=None)
    p.add_argument("--input_path", required=True)
    p.add_argument("--output_path", required=True)
    p.add_argument("--dtype", default=None)
    p.add_argument("--reversed", action="store_true")
    p.add_argument("--qkv_concat", action="store_true")
    p.add_argument("--dry_run", action="store_true")
    p.add_argument("--format", choices=("ckpt", "safetensors"), default=None)
    # accepted for compatibility; the architecture comes from config.json
    for extra in ("--n_head", "--hidden_size", "--layers", "--is_pretrain", "--config"):
        p.add_argument(extra, default=None, help=argparse.SUPPRESS)
    # MindFormers' convert_weight.py hands any other `--key value` pair to its per-model converter (a family's own
    # flags); ours read the architecture from config.json, so such pairs are accepted and reported as ignored
    ns, rest = p.parse_known_args(argv)
    keys = rest[0::2]
    if len(rest) % 2 or not all(k.startswith("--") and len(k) > 2 for k in keys):
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if keys:
        print(
            f"mf-ext convert: note: ignoring {', '.join(keys)} (the architecture comes from config.json)",
            file=sys.stderr,
        )
    if ns.dtype in ("None", "none", ""):
        ns.dtype = None
    out = ns.output_path
    if ns.reversed:
        # MindFormers wrote one torch .bin; an HF folder is what from_pretrained needs, so write that (a converter
        # written for MindFormers' convert_weight.py keeps its own output)
        if out.endswith((".bin", ".pt", ".pth", ".safetensors")) and not _mindformers_convention(ns, "ms_to_hf"):
            out = str(Path(out).with_suffix(""))
            print(
                f"note: writing an HF folder {out!r} (from_pretrained loads it) instead of a single "
                f"{Path(ns.output_path).suffix} file",
                file=sys.stderr,
            )
        sub = "ms_to_hf"
        data = dict(
            model=ns.model,
            register_path=ns.register_path,
            input_path=ns.input_path,
            output_path=out,
            dtype=ns.dtype,
            dry_run=ns.dry_run,
        )
    else:
        sub = "hf_to_ms"
        fmt = ns.format or "ckpt"  # MindFormers writes a .ckpt
        data = dict(
            model=ns.model,
            register_path=ns.register_path,
            input_path=ns.input_path,
            output_path=out,
            dtype=ns.dtype,
            dry_run=ns.dry_run,
            format=fmt,
            qkv_concat=ns.qkv_concat,
        )
    return _validated_run(sub, data)


def _validated_run(sub: str, data: dict) -> int:
    from pydantic import ValidationError

    try:
        args = _models()[sub](**data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or sub
        err["msg"] = err["msg"].removeprefix("Value error, ")
        raise CliError(f"--{loc}: {err['msg']} (got {err.get('input')!r})" if loc != sub else err["msg"]) from None
    return _run(sub, args)


def _print_all_configs(rest: list[str]) -> int:
    parser = _parser()
    for i, sub in enumerate(SUBCOMMANDS):
        print(("---\n" if i else "") + f"# mf-ext convert {sub} --config THIS_FILE.yaml", flush=True)
        try:
            parser.parse_args([sub, "--print_config", *rest])
        except SystemExit as e:
            if e.code:
                return int(e.code)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mf-ext convert``; returns the exit status."""
    argv = _normalise(list(sys.argv[1:] if argv is None else argv))
    if argv and argv[0] == "--print_config":  # no subcommand named: the settings of each, one YAML document apiece
        return _print_all_configs(argv[1:])
    try:
        if argv and argv[0].startswith("--") and argv[0] not in ("--help", "-h", "--print_config", "--config"):
            return _legacy(argv)
        parser = _parser()
        try:
            cfg = parser.parse_args(argv)
        except SystemExit as e:  # --help, --print_config
            return int(e.code or 0)
        except Exception as e:  # noqa: BLE001 -- jsonargparse's ArgumentError and friends: one line, exit 2
            msg = " ".join(str(e).split())
            sub = argv[0] if argv and argv[0] in SUBCOMMANDS else ""
            print(f"mf-ext convert: error: {msg} (see mf-ext convert {sub} --help)".replace("  ", " "), file=sys.stderr)
            return 2
        sub = cfg.subcommand
        data = {k: v for k, v in vars(cfg[sub]).items() if k not in ("config", "__path__")}
        data = {k: v for k, v in data.items() if k != "print_config"}
        return _validated_run(sub, data)
    except KeyboardInterrupt:
        print("mf-ext convert: interrupted; nothing was written at the destination", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 -- one line for users; tracebacks only with MF_EXT_DEBUG=1
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        msg = one_line(e)
        known = isinstance(e, MfExtError)
        print(f"mf-ext convert: error: {msg if known else f'{type(e).__name__}: {msg}'}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
