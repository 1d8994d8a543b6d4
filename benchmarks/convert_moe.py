"""MoE conversion benchmark: memory flat in the number of experts (experts stacked over ``{E}``, streamed).

    python benchmarks/convert_moe.py                     # 8 and 64 experts per layer, 2 MoE layers (~1.5 GB)
    python benchmarks/convert_moe.py --experts 8 128 --layers 1

A synthetic bf16 HF ``MixtralForCausalLM`` checkpoint (Mixtral's tensor names, Qwen3-30B-A3B's widths: hidden
2048, expert ffn 768, vocab 32000; a router and ``E`` experts per layer) is written for each expert count and
converted with research/mixtral's own weight spec. Every contender runs in its own subprocess: hf_to_ms stacking
experts ``(E, out, in)`` to safetensors and to a ``.ckpt`` (bytes copied from the page cache, one expert at a
time), hf_to_ms to the mcore flattened layout (option ``mcore``: ``weight1`` = per expert ``[w1^T | w3^T]``, one
expert transposed at a time), and ms_to_hf unstacking the ``.ckpt``. Wall time is measured around the
process, peak *anonymous* RSS by sampling ``/proc/<pid>/status``; ``cp -r`` of the same checkpoint is the
speed baseline of the same run. The budget is 256 MiB + the largest tensor of the checkpoint (issue 11): a
converter that materialised one stacked tensor would exceed it by the stack's size at 64 experts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's mf_ext, in the parent and in the child processes
sys.path.insert(0, str(REPO / "benchmarks"))
from convert import du, run  # noqa: E402  (same process sampling as benchmarks/convert.py)

HIDDEN, MOE_INTER, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 2048, 768, 32, 4, 128, 32000


def spec():
    """research/mixtral's weight spec (the real family's): router, experts stacked over ``{E}`` as ``(E, out, in)``,
    or with the ``mcore`` option the flattened ``weight1`` / ``weight2`` layout."""
    from mf_ext.registry import load_plugin

    return load_plugin(REPO / "research" / "mixtral").family.spec()


def _tensors(layers: int, experts: int) -> list[tuple[str, tuple[int, ...]]]:
    """HF ``MixtralForCausalLM`` tensor names and shapes (Mixtral's layout, Qwen3-30B-A3B's expert widths)."""
    out = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.block_sparse_moe."
        out += [
            (a + "q_proj.weight", (HEADS * HEAD_DIM, HIDDEN)),
            (a + "k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)),
            (a + "v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)),
            (a + "o_proj.weight", (HIDDEN, HEADS * HEAD_DIM)),
            (f"model.layers.{i}.input_layernorm.weight", (HIDDEN,)),
            (f"model.layers.{i}.post_attention_layernorm.weight", (HIDDEN,)),
            (m + "gate.weight", (experts, HIDDEN)),
        ]
        for e in range(experts):
            x = f"{m}experts.{e}."
            out += [(x + "w1.weight", (MOE_INTER, HIDDEN)), (x + "w3.weight", (MOE_INTER, HIDDEN)),
                    (x + "w2.weight", (HIDDEN, MOE_INTER))]  # fmt: skip
    out += [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]
    return out


def make_checkpoint(path: Path, layers: int, experts: int, shard_bytes: int = 2 * 10**9) -> tuple[int, int]:
    """Write the synthetic bf16 checkpoint (sharded safetensors + index + config.json); (bytes, largest tensor)."""
    names = _tensors(layers, experts)
    rng = np.random.default_rng(0)
    block = ((rng.standard_normal(8 * 2**20, dtype=np.float32) * 0.02).view(np.uint32) >> 16).astype(np.uint16)
    shards, cur, size = [], [], 0
    for n, s in names:
        nb = int(np.prod(s)) * 2
        if cur and size + nb > shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append((n, s))
        size += nb
    shards.append(cur)
    path.mkdir(parents=True, exist_ok=True)
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, pos = {"__metadata__": {"format": "pt"}}, 0
        for n, s in shard:
            nb = int(np.prod(s)) * 2
            header[n] = {"dtype": "BF16", "shape": list(s), "data_offsets": [pos, pos + nb]}
            pos += nb
            weight_map[n] = fname
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(path / fname, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for _n, s in shard:
                left = int(np.prod(s))
                while left:
                    k2 = min(left, block.size)
                    f.write(block[:k2].tobytes())
                    left -= k2
    total = sum(int(np.prod(s)) * 2 for _, s in names)
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": HIDDEN,
           "num_hidden_layers": layers, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
           "head_dim": HEAD_DIM, "intermediate_size": MOE_INTER, "num_local_experts": experts, "vocab_size": VOCAB,
           "torch_dtype": "bfloat16"}  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    return total, max(int(np.prod(s)) * 2 for _, s in names)


def child(argv: list[str]) -> None:
    """``--child hf_to_ms|ms_to_hf SRC OUT FORMAT LAYOUT``: one conversion in this process."""
    from mf_ext.convert import hf_to_ms, ms_to_hf

    direction, src, out, fmt, layout = argv
    opts = {"mcore": layout == "mcore"}
    t = time.perf_counter()
    if direction == "hf_to_ms":
        hf_to_ms(spec(), src, out, format=fmt, progress=False, **opts)
    else:
        ms_to_hf(spec(), src, out, progress=False, print_fn=lambda *_: None, **opts)
    print(f"INNER {time.perf_counter() - t:.3f}")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experts", type=int, nargs="+", default=[8, 64], help="experts per layer (default 8 64)")
    ap.add_argument("--layers", type=int, default=2, help="MoE layers (default 2)")
    ap.add_argument("--workdir", default=None, help="where to write (default: a temp dir, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mfext_bench_moe_"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), GLOG_v="3")
    me = str(Path(__file__).resolve())
    rows = []
    try:
        for n_exp in args.experts:
            src = work / f"hf_{n_exp}"
            t = time.perf_counter()
            total, largest = make_checkpoint(src, args.layers, n_exp)
            stacked = n_exp * MOE_INTER * HIDDEN * 2
            budget = 256 * 2**20 + largest
            print(
                f"\n{n_exp} experts x {args.layers} layers: {total / 1e9:.2f} GB bf16 ({time.perf_counter() - t:.1f} s "
                f"to write); largest tensor {largest / 2**20:.0f} MiB, one stacked expert tensor "
                f"{stacked / 2**20:.0f} MiB; budget 256 MiB + largest = {budget / 2**20:.0f} MiB",
                flush=True,
            )
            subprocess.run(["cat", *map(str, src.glob("*.safetensors"))], stdout=subprocess.DEVNULL, check=True)
            subprocess.run(["sync"], check=True)
            cp_wall, _, _ = run(["cp", "-r", str(src), str(work / "cp")], env)
            shutil.rmtree(work / "cp")
            print(f"  {'cp -r':<36} {cp_wall:7.2f} s  {total / cp_wall / 1e9:6.2f} GB/s", flush=True)
            for label, direction, inp, out, fmt, layout in (
                ("hf_to_ms stacked (E,out,in) st", "hf_to_ms", src, work / "st", "safetensors", "plain"),
                ("hf_to_ms stacked (E,out,in) ckpt", "hf_to_ms", src, work / "t.ckpt", "ckpt", "plain"),
                ("hf_to_ms mcore weight1/2 ckpt", "hf_to_ms", src, work / "m.ckpt", "ckpt", "mcore"),
                ("ms_to_hf unstack (E,out,in) ckpt", "ms_to_hf", work / "t.ckpt", work / "back", "", "plain"),
            ):
                subprocess.run(["sync"], check=True)
                wall, peak, _ = run([sys.executable, me, "--child", direction, str(inp), str(out), fmt, layout], env)
                rows.append((n_exp, label, wall, peak, budget, total, cp_wall))
                print(
                    f"  {label:<36} {wall:7.2f} s  {total / wall / 1e9:6.2f} GB/s  ({cp_wall / wall:4.2f}x cp)  "
                    f"peak anon {peak / 2**20:5.0f} MiB  {'within' if peak <= budget else 'OVER'} budget  "
                    f"(out {du(out) / 1e9:.2f} GB)",
                    flush=True,
                )
            for p in (work / "st", work / "back"):
                shutil.rmtree(p, ignore_errors=True)
            for p in list(work.glob("*.ckpt*")):
                p.unlink()
            shutil.rmtree(src)
        print("\npeak anonymous memory (MiB) by expert count:")
        labels = list(dict.fromkeys(r[1] for r in rows))
        print(f"  {'':<36} " + " ".join(f"{e:>8}" for e in args.experts))
        for label in labels:
            peaks = [r[3] for r in rows if r[1] == label]
            print(f"  {label:<36} " + " ".join(f"{p / 2**20:8.0f}" for p in peaks))
        ok = all(r[3] <= r[4] for r in rows)
        print(f"\nall within 256 MiB + largest tensor: {ok}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
