"""MoE conversion benchmark: memory flat in the number of experts (experts stacked over ``{E}``, streamed).

    python benchmarks/convert_moe.py                     # 8 and 64 experts per layer, 2 MoE layers (~1.5 GB)
    python benchmarks/convert_moe.py --experts 8 128 --layers 1

A synthetic bf16 HF checkpoint with Qwen3-30B-A3B widths (hidden 2048, expert ffn 768, vocab 32000; a router and
``E`` experts per layer) is written for each expert count. Every contender runs in its own subprocess: hf_to_ms
stacking experts ``(E, out, in)`` (bytes copied from the page cache), hf_to_ms stacking transposed
``(E, in, out)`` (one expert copied and transposed at a time), hf_to_ms to the mcore flattened layout
(``weight1`` = per expert ``[gate^T | up^T]``), and ms_to_hf unstacking. Wall time is measured around the
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

HIDDEN, MOE_INTER, HEADS, HEAD_DIM, VOCAB = 2048, 768, 32, 128, 32000


def spec():
    """A Qwen3-MoE-like mapping (attention, q/k norms, router, stacked experts); options pick the expert layout."""
    from mf_ext.convert.spec import Option, Rename, Spec, Stack, Transpose, mcore_experts

    a, m, x, ma, mf = (
        "model.layers.{L}.self_attn.",
        "model.layers.{L}.mlp.",
        "model.layers.{L}.mlp.experts.{E}.",
        "model.layers.{L}.attention.",
        "model.layers.{L}.feed_forward.",
    )
    up, down = ("moe_inter", "hidden"), ("hidden", "moe_inter")
    plain = "!transposed+!mcore"
    rules = [
        Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
        Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
        Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden")),
        Rename(a + "q_proj.weight", ma + "wq.weight", ("heads*head_dim", "hidden")),
        Rename(a + "k_proj.weight", ma + "wk.weight", ("kv_heads*head_dim", "hidden")),
        Rename(a + "v_proj.weight", ma + "wv.weight", ("kv_heads*head_dim", "hidden")),
        Rename(a + "o_proj.weight", ma + "wo.weight", ("hidden", "heads*head_dim")),
        Rename(a + "q_norm.weight", ma + "q_norm.weight", ("head_dim",)),
        Rename(a + "k_norm.weight", ma + "k_norm.weight", ("head_dim",)),
        Rename("model.layers.{L}.input_layernorm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",)),
        Rename("model.layers.{L}.post_attention_layernorm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",)),
        Rename(m + "gate.weight", mf + "router.dense.weight", ("experts", "hidden")),
    ]
    for proj, w, shape in (("gate_proj", "w1", up), ("up_proj", "w3", up), ("down_proj", "w2", down)):
        rules.append(Stack(x + proj + ".weight", mf + f"ffn.{w}.weight", shape, when=plain))
        rules.append(Stack(x + proj + ".weight", mf + f"ffn.{w}.weight", shape, op=Transpose(), when="transposed"))
    rules += mcore_experts(x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight",
                           m + "experts.weight1", m + "experts.weight2", up_shape=up, down_shape=down,
                           when="mcore")  # fmt: skip

    def dims(cfg):
        return {"layers": cfg["num_hidden_layers"], "hidden": cfg["hidden_size"], "heads": cfg["num_attention_heads"],
                "kv_heads": cfg["num_key_value_heads"], "head_dim": cfg["head_dim"],
                "moe_inter": cfg["moe_intermediate_size"], "experts": cfg["num_experts"],
                "vocab": cfg["vocab_size"]}  # fmt: skip

    detect = {
        "mcore": lambda names: any(n.endswith(".weight1") for n in names),
        "transposed": lambda names: False,  # (E, in, out) vs (E, out, in) needs the config; ms_to_hf is told
    }
    return Spec("moe-bench", tuple(rules), dims, options={k: Option(detect=d) for k, d in detect.items()})


def _tensors(layers: int, experts: int) -> list[tuple[str, tuple[int, ...]]]:
    out = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        out += [
            (a + "q_proj.weight", (HEADS * HEAD_DIM, HIDDEN)),
            (a + "k_proj.weight", (4 * HEAD_DIM, HIDDEN)),
            (a + "v_proj.weight", (4 * HEAD_DIM, HIDDEN)),
            (a + "o_proj.weight", (HIDDEN, HEADS * HEAD_DIM)),
            (a + "q_norm.weight", (HEAD_DIM,)),
            (a + "k_norm.weight", (HEAD_DIM,)),
            (f"model.layers.{i}.input_layernorm.weight", (HIDDEN,)),
            (f"model.layers.{i}.post_attention_layernorm.weight", (HIDDEN,)),
            (m + "gate.weight", (experts, HIDDEN)),
        ]
        for e in range(experts):
            x = f"{m}experts.{e}."
            out += [(x + "gate_proj.weight", (MOE_INTER, HIDDEN)), (x + "up_proj.weight", (MOE_INTER, HIDDEN)),
                    (x + "down_proj.weight", (HIDDEN, MOE_INTER))]  # fmt: skip
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
    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": HIDDEN,
           "num_hidden_layers": layers, "num_attention_heads": HEADS, "num_key_value_heads": 4, "head_dim": HEAD_DIM,
           "moe_intermediate_size": MOE_INTER, "num_experts": experts, "vocab_size": VOCAB,
           "torch_dtype": "bfloat16"}  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    return total, max(int(np.prod(s)) * 2 for _, s in names)


def child(argv: list[str]) -> None:
    """``--child hf_to_ms|ms_to_hf SRC OUT FORMAT LAYOUT``: one conversion in this process."""
    from mf_ext.convert import hf_to_ms, ms_to_hf

    direction, src, out, fmt, layout = argv
    opts = {"transposed": layout == "transposed", "mcore": layout == "mcore"}
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
                ("hf_to_ms stacked (E,in,out) ckpt", "hf_to_ms", src, work / "t.ckpt", "ckpt", "transposed"),
                ("hf_to_ms mcore weight1/2 ckpt", "hf_to_ms", src, work / "m.ckpt", "ckpt", "mcore"),
                ("ms_to_hf unstack (E,in,out)", "ms_to_hf", work / "t.ckpt", work / "back", "", "transposed"),
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
