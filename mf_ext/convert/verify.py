"""``mf-ext verify``: after converting, check that the MindSpore model gives what HF transformers gives.

    mf-ext verify --register_path research/llama3_1 --hf_path HF_DIR --ms_path llama.ckpt [--prompt TEXT]

Runs HF transformers (eager attention) on ``HF_DIR`` and the family's MindSpore model (its predict YAML, the
architecture taken from ``HF_DIR/config.json``) with the converted ``MS`` checkpoint on the same ids; prints the
max |logits difference|, how many of ``--steps`` greedy tokens agree, and PASS/FAIL against ``--tolerance``.
Exit status 0 on PASS, 1 on FAIL or error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXAMPLES = """examples:
  mf-ext verify --register_path research/llama3_1 --hf_path Llama-3.1-8B --ms_path out/llama3_1_8b.ckpt
  mf-ext verify --model llama --hf_path HF_DIR --ms_path out/w.ckpt --prompt "The capital of France is" --steps 8
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, not argparse's usage dump
        print(f"mf-ext verify: error: {message} (see mf-ext verify --help)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mf-ext verify",
        description=__doc__.split("\n\n")[0].replace("``", ""),  # no RST markup in --help
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--register_path", help="family folder (its predict YAML builds the MindSpore model)")
    src.add_argument(
        "--model",
        help="model name of a built-in or installed family (llama, ...; see mf-ext models); default: the family "
        "that reads HF_DIR/config.json",
    )
    p.add_argument("--hf_path", required=True, help="HF checkpoint folder (the reference)")
    p.add_argument("--ms_path", required=True, help="converted MindSpore checkpoint (.ckpt or safetensors folder)")
    p.add_argument("--config", default=None, help="model YAML (default: the family's predict YAML)")
    p.add_argument("--prompt", default=None, help="text to tokenize with HF_DIR's tokenizer (default: fixed ids)")
    p.add_argument("--seq", type=int, default=16, help="number of fixed ids when no --prompt (default 16)")
    p.add_argument("--steps", type=int, default=8, help="greedy tokens to compare (default 8; 0 skips)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float16", "bfloat16"),
        help="HF compute dtype (default float32; the MindSpore model computes as its YAML says)",
    )
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |delta logits| to PASS (default 1e-4)")
    p.add_argument("--mode", type=int, default=None, choices=(0, 1), help="MindSpore mode: 0 graph, 1 PyNative")
    return p


def _ids(args, vocab_size: int):
    import numpy as np

    if args.prompt is None:
        return np.random.RandomState(0).randint(0, vocab_size, (1, args.seq)), "fixed pseudo-random ids"
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.hf_path)
    except Exception as e:  # noqa: BLE001 -- any tokenizer failure: say which and stop
        raise ValueError(f"--prompt needs a tokenizer in {args.hf_path!r}: {str(e).splitlines()[0]}") from None
    return np.asarray([tok.encode(args.prompt)]), f"prompt {args.prompt!r}"


def run(args) -> int:
    import json

    import numpy as np

    from mf_ext import registry

    hf_dir, ms_path = Path(args.hf_path), Path(args.ms_path)
    for p, what in ((hf_dir / "config.json", "--hf_path"), (ms_path, "--ms_path")):
        if not p.exists():
            raise ValueError(f"{what}: {str(p)!r} does not exist")
    hf_cfg = json.loads((hf_dir / "config.json").read_text())
    if args.model:
        plugin = registry.plugin_for_model(args.model)
    elif args.register_path:
        plugin = registry.load_plugin(args.register_path)
    else:
        plugin = registry.family_for_hf_config(hf_cfg)
    family = plugin.family
    config = Path(args.config) if args.config else family.yaml("predict")
    if config is None:
        raise ValueError(f"family {family.name!r} declares no predict YAML: pass --config MODEL.yaml")
    if not config.is_file():
        raise ValueError(f"no model YAML: {str(config)!r} does not exist (pass --config)")
    ids, what = _ids(args, hf_cfg["vocab_size"])

    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    hf = AutoModelForCausalLM.from_pretrained(
        hf_dir, attn_implementation="eager", dtype=getattr(torch, args.dtype)
    ).eval()
    with torch.no_grad():
        ref = hf(torch.tensor(ids)).logits.float().numpy()
        hf_tokens = None
        if args.steps:
            # plain argmax over full forwards, as mf_ext.generate decodes here: no eos handling on either side
            # (HF generate's min_new_tokens would mask the eos logit, which ours does not)
            seq, picked = torch.tensor(ids), []
            for _ in range(args.steps):
                nxt = int(hf(seq).logits[0, -1].argmax())
                picked.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
            hf_tokens = np.asarray(picked)
    t_hf = time.perf_counter() - t0

    import mf_ext
    from mf_ext.api import apply_hf_architecture, build_model_from_config
    from mf_ext.config import load_config_ex

    t0 = time.perf_counter()
    seq = int(ids.shape[1] + max(args.steps, 1) + 8)
    names = _tensor_names(ms_path)
    overrides = {"model.model_config.seq_length": seq, "model.model_config.batch_size": 1}
    # layout options of the checkpoint (fused projections ...): what the family's spec detects in its names, for the
    # options the model config has a key of the same name for
    if family.specs:
        import yaml

        mc = ((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("model") or {}).get("model_config") or {}
        for name, option in getattr(family.spec(), "options", {}).items():
            if name in mc and option.detect is not None:
                overrides[f"model.model_config.{name}"] = bool(option.detect(names))
    cfg, entries = load_config_ex(str(config), str(plugin.root), overrides)
    apply_hf_architecture(cfg, entries, hf_dir, who="verify")
    model = build_model_from_config(cfg, checkpoint=ms_path, mode=args.mode)
    got = mf_ext.logits(model, ids)
    ms_tokens = None
    if args.steps:
        ms_tokens = np.asarray(mf_ext.generate(model, ids, args.steps, do_sample=False))[0, ids.shape[1] :]
    t_ms = time.perf_counter() - t0

    diff = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
    agree = steps = 0
    if args.steps:
        steps = min(len(hf_tokens), len(ms_tokens))
        while agree < steps and hf_tokens[agree] == ms_tokens[agree]:
            agree += 1
    ok = diff <= args.tolerance and agree == steps
    print(f"input: {what}, {ids.shape[1]} tokens; HF {t_hf:.1f} s, MindSpore {t_ms:.1f} s")
    print(f"max |delta logits| = {diff:.3e} (tolerance {args.tolerance:g})")
    if args.steps:
        print(
            f"greedy tokens: {agree}/{steps} agree"
            + (
                ""
                if agree == steps
                else f" (first difference at step {agree}: HF {int(hf_tokens[agree])} vs MindSpore {int(ms_tokens[agree])})"
            )
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _tensor_names(ms_path: Path) -> list[str]:
    from mf_ext.convert.readers import open_source

    r = open_source(ms_path)
    try:
        return list(r.tensors)
    finally:
        r.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mf-ext verify``; returns the exit status."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # --help or a usage error (already printed)
        return int(e.code or 0)
    try:
        return run(args)
    except Exception as e:  # noqa: BLE001 -- one line for users; MF_EXT_DEBUG=1 for the traceback
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"mf-ext verify: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
