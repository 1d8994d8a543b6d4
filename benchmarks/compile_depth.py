"""Graph-mode compile cost vs model depth: first ``generate()`` of a tiny Llama with 2 and with 8 layers.

    python benchmarks/compile_depth.py                 # layers 2 and 8, 3 alternating fresh processes each
    python benchmarks/compile_depth.py --repeat 5 --compare-no-reuse   # also with MF_EXT_LAYER_REUSE=0
    python benchmarks/compile_depth.py --layers 2 8 16 --repeat 1

Each measurement runs in a fresh interpreter (nothing compiled yet, no MindSpore compile cache): build the
research/llama3_1 ``Llama3ForCausalLM`` (random weights, hidden 64, GQA 4/2 heads, vocab 256), then time

- ``first``: the first ``generate()`` (10-token prompt, 16 new tokens, KV cache): compile + run, wall time and
  CPU time of the process (all threads; less sensitive to other load on a shared machine);
- ``again``: the same call repeated (run only), so ``first - again`` is the compile time;
- ``new len``: a 70-token prompt afterwards, with the graphs compiled during that call (issue 12: a new prompt
  length within the context should compile nothing new).

Compile counts are MindSpore's own: calls of ``_CellGraphExecutor.compile`` that built a new graph (the cached ones
return ``False``). Depths alternate, so machine load hits all alike; the best of ``--repeat`` runs is the least
disturbed one (the median is printed beside it).
Target (DESIGN.md §4): first generate() of 8 layers <= 1.3x that of 2 layers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(layers: int, mode: str) -> dict:
    os.environ.setdefault("GLOG_v", "3")
    sys.path.insert(0, str(REPO))
    import mindspore as ms
    import numpy as np
    from mindspore.graph import api as graph_api

    from mf_ext.generation import generate
    from mf_ext.registry import load_plugin

    compiled: list[str] = []
    original = graph_api._CellGraphExecutor.compile

    def counting(self, obj, *args, **kwargs):
        phase, new = original(self, obj, *args, **kwargs)
        if new:
            compiled.append(type(obj).__name__)
        return phase, new

    graph_api._CellGraphExecutor.compile = counting
    ms.set_context(device_target="CPU", mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    plugin = load_plugin(REPO / "research" / "llama3_1")
    cfg_mod, model_mod = plugin.import_module("llama3_1_config"), plugin.import_module("llama3_1_model")
    cfg = cfg_mod.Llama3Config(
        hidden_size=64,
        num_layers=layers,
        num_heads=4,
        n_kv_heads=2,
        intermediate_size=160,
        vocab_size=256,
        seq_length=512,
        max_position_embedding=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    t0 = time.perf_counter()
    model = model_mod.Llama3ForCausalLM(cfg)
    model.set_train(False)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, 256, (1, 10))
    t0, c0 = time.perf_counter(), time.process_time()
    first_out = generate(model, prompt, 16)
    first_s, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    first_compiles = len(compiled)
    t0 = time.perf_counter()
    again_out = generate(model, prompt, 16)
    again_s = time.perf_counter() - t0
    assert (first_out == again_out).all()
    before = len(compiled)
    t0 = time.perf_counter()
    generate(model, rng.integers(3, 256, (1, 70)), 16)
    newlen_s = time.perf_counter() - t0
    return {
        "layers": layers,
        "build_s": build_s,
        "first_s": first_s,
        "first_cpu": first_cpu,
        "again_s": again_s,
        "first_compiles": first_compiles,
        "newlen_s": newlen_s,
        "newlen_compiles": len(compiled) - before,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 8], help="depths; the first is the baseline")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per depth (best and median reported)")
    ap.add_argument("--mode", choices=("graph", "pynative"), default="graph")
    ap.add_argument(
        "--compare-no-reuse",
        action="store_true",
        help="also run every depth with MF_EXT_LAYER_REUSE=0 (each layer compiled separately) in the same run",
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(_child(args.child, args.mode)))
        return
    variants = ["reuse"] + (["no-reuse"] if args.compare_no_reuse else [])
    runs: dict[tuple[str, int], list[dict]] = {(v, n): [] for v in variants for n in args.layers}
    for _ in range(args.repeat):
        for variant in variants:
            env = dict(os.environ, MF_EXT_LAYER_REUSE="0" if variant == "no-reuse" else "1")
            for n in args.layers:
                cmd = [sys.executable, __file__, "--child", str(n), "--mode", args.mode]
                out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, env=env)
                line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
                if out.returncode or line is None:
                    sys.exit(f"compile_depth: child with {n} layers ({variant}) failed:\n{out.stderr[-3000:]}")
                runs[variant, n].append(json.loads(line[len("RESULT ") :]))
    print(f"mode {args.mode}, tiny Llama (hidden 64, heads 4/2, vocab 256), {args.repeat} fresh processes per depth")
    for variant in variants:
        _report(variant, args.layers, {n: runs[variant, n] for n in args.layers})


def _report(variant: str, layers: list[int], runs: dict[int, list[dict]]) -> None:
    print(f"\nlayer graph reuse: {'on' if variant == 'reuse' else 'off (MF_EXT_LAYER_REUSE=0)'}")
    head = f"{'layers':>6} {'first gen best/median s':>24} {'(cpu best)':>10} {'again s':>8} {'compiles':>9} "
    print(head + f"{'new len s':>10} {'new-len compiles':>17}")
    best = {n: min(r["first_s"] for r in runs[n]) for n in layers}
    med = {n: statistics.median(r["first_s"] for r in runs[n]) for n in layers}
    cpu = {n: min(r["first_cpu"] for r in runs[n]) for n in layers}
    for n in layers:
        rs = runs[n]
        again = statistics.median(r["again_s"] for r in rs)
        newlen = statistics.median(r["newlen_s"] for r in rs)
        first = f"{best[n]:.2f} / {med[n]:.2f}"
        print(
            f"{n:>6} {first:>24} {cpu[n]:>10.2f} {again:>8.2f} {rs[0]['first_compiles']:>9} {newlen:>10.2f} "
            f"{max(r['newlen_compiles'] for r in rs):>17}"
        )
    lo, hi = layers[0], layers[-1]
    print(
        f"first generate() {hi} vs {lo} layers: {best[hi] / best[lo]:.2f}x best of {len(runs[lo])} "
        f"({med[hi] / med[lo]:.2f}x median, {cpu[hi] / cpu[lo]:.2f}x cpu time) (target <= 1.3x)"
    )


if __name__ == "__main__":
    main()
