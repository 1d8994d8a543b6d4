"""``mf-ext``: one entry point for the tools around the registry. Each subcommand lives in its own module and is
imported only when it runs, so ``mf-ext --help`` and ``mf-ext <cmd> --help`` stay fast."""

from __future__ import annotations

import importlib
import os
import sys

# subcommand → (module, function taking argv, one-line summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "convert": ("mf_ext.convert.cli", "main", "convert weights HF <-> MindSpore (hf_to_ms, ms_to_hf, resplit)"),
    "verify": ("mf_ext.convert.verify", "main", "compare HF transformers and MindSpore logits on converted weights"),
    "data": ("mf_ext.data.cli", "main", "turn Alpaca/ShareGPT JSON into a MindRecord finetune dataset"),
    "export": (
        "mf_ext.train.export",
        "main",
        "export a finetuned checkpoint (merged LoRA) to HF, or its adapter to PEFT",
    ),
    "migrate": ("mf_ext.migrate.cli", "migrate_main", "migrate a Llama 2 YAML to Llama 3, or HF config.json to YAML"),
    "validate": ("mf_ext.migrate.cli", "validate_main", "check a YAML without building the model"),
    "models": ("mf_ext.cli", "models_main", "list the model families (built-in and installed) and their names"),
}

USAGE = """usage: mf-ext COMMAND [options]   (mf-ext COMMAND --help for each)

commands:
{commands}

examples:
  mf-ext convert hf_to_ms --model llama --input_path HF_DIR --output_path out/llama.ckpt
  mf-ext convert ms_to_hf --model llama --input_path out/llama.ckpt --output_path HF_OUT
  mf-ext verify --register_path research/llama3_1 --hf_path HF_DIR --ms_path out/llama.ckpt
  mf-ext data --register_path research/llama3_1 --input data.json --output out.mindrecord --seq_length 512
  mf-ext migrate --config configs/llama2/finetune_llama2_7b.yaml --to llama3_8b --output x.yaml
  mf-ext validate --config x.yaml --register_path research/llama3_1
"""


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    return USAGE.format(commands="\n".join(f"  {c:<{width}}  {d}" for c, (_, _, d) in COMMANDS.items()))


def models_main(argv: list[str]) -> int:
    """``mf-ext models``: every family (built-in and installed), its ``--model`` names, HF architectures and folder.

    Reads each folder's ``family.py`` (or a legacy ``convert_weight.py``'s ``MODEL_NAMES``); imports no MindSpore.
    """
    if argv and argv[0] in ("-h", "--help"):
        print(
            "usage: mf-ext models\n\nList the model families mf-ext knows (research/ folders shipped with it and "
            "packages installed\nunder the 'mf_ext.families' entry point group): family, --model names, HF "
            "architectures, folder."
        )
        return 0
    from mf_ext.errors import MfExtError, one_line
    from mf_ext.registry import all_families, available_models

    try:
        available_models()  # a name claimed twice is an error worth seeing first
        rows = [(p.family, p.root) for p in all_families()]
    except MfExtError as exc:
        print(f"mf-ext models: error: {one_line(exc)}", file=sys.stderr)
        return 2
    for fam, root in rows:
        archs = ", ".join(fam.hf_architectures) or ("(legacy folder: converters only)" if fam.legacy else "-")
        print(f"{fam.name:<12} {', '.join(fam.model_names):<60} {archs:<32} {root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from mf_ext import __version__

        print(f"mf-ext {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(cmd, list(COMMANDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"mf-ext: unknown command {cmd!r}{hint}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[cmd]
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        print(f"mf-ext {cmd}: not available in this installation ({exc})", file=sys.stderr)
        return 2
    from mf_ext.errors import MfExtError, one_line
    from mf_ext.runtime import prepare_mindformers

    # MindFormers' log files go to the cache, not to ./output/log of wherever the command runs; its console to errors.
    cache = os.environ.get("MF_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mf-ext")
    prepare_mindformers(os.path.join(cache, "log"))
    try:
        rc = fn(rest)
    except MfExtError as exc:  # the subcommand did not report it itself: one line, never a traceback
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        print(f"mf-ext {cmd}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mf-ext {cmd}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
