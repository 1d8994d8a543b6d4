"""Start-up and first token, measured in one run against baselines of the same run (issue 12's targets).

    python benchmarks/startup.py                 # everything (about 6-10 minutes on 2 cores)
    python benchmarks/startup.py --repeat 1 --skip-1gb --skip-modes

Every command runs in a fresh interpreter; medians of ``--repeat`` runs are printed with their ratio to the
baseline ``python -c "import mindformers"`` measured in the same run.

1. CLI ``--help`` start-up (target <= 1 s each).
2. README's demo (``predict_demo.yaml``: 1.1M parameters, 4 layers, 40 new tokens), whole process wall time:
   cold = a fresh, empty ``MF_EXT_CACHE`` (no conversion, no compiled graphs), warm = a second run on the same cache.
   Default ``mode: auto`` (targets: cold <= 1.6x, warm <= 1.25x the import), and beside it, unless ``--skip-modes``,
   ``--mode 0`` (graph, both graphs compiled) and ``--mode 1`` (PyNative): the measurements behind the auto rule.
3. Unless ``--skip-1gb``: a ~1 GB HF Llama folder of random fp32 weights (written by this benchmark into a temp dir,
   deleted afterwards): ``run_mindformer_ext.py --convert DIR --max_new_tokens 1`` from process start to exit (the
   first token printed) vs HF transformers (``from_pretrained`` + ``generate(max_new_tokens=1)``) on the same folder
   and prompt ids, and the bytes our run wrote (new files under ``MF_EXT_CACHE`` and the output folder, and the
   kernel's count of blocks written by the process, ``ru_oublock`` x 512).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "research" / "llama3_1" / "predict_demo.yaml"
PLUGIN = REPO / "research" / "llama3_1"
PROMPT = "On a small island at the edge of a cold grey sea"
BASE_NAME = 'python -c "import mindformers"'


def run(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess, int]:
    """Wall seconds, the finished process, and blocks it wrote (``ru_oublock`` of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if res.returncode:
        sys.exit(f"startup: {' '.join(cmd[:4])} ... failed:\n{res.stderr[-3000:]}")
    return dt, res, resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock - before


def env_with(**extra) -> dict:
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def line(name: str, seconds: float, base: float, target: float | None = None, note: str = "") -> None:
    flag = "" if target is None else (f"  (target <= {target}x)" if seconds / base <= target else f"  (> {target}x)")
    print(f"{name:<44} {seconds:>8.2f} {seconds / base:>8.2f}x{flag}{note}", flush=True)


def demo_cmd(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "run_mindformer_ext.py"),
        "--config",
        str(DEMO),
        "--register_path",
        str(PLUGIN),
        "--predict_data",
        PROMPT,
        "--output_dir",
        str(out),
        *extra,
    ]


def demo(tmp: Path, base: float, repeat: int, label: str, *extra: str) -> None:
    cold, warm, modes = [], [], set()
    for i in range(repeat):
        cache = tmp / f"cache-{label}-{i}"
        env = env_with(MF_EXT_CACHE=cache)
        t, res, _ = run(demo_cmd(tmp / "out", *extra), env)
        cold.append(t)
        t, res2, _ = run(demo_cmd(tmp / "out", *extra), env)
        warm.append(t)
        modes.update(x.split("(")[0].strip() for x in (res.stderr + res2.stderr).splitlines() if " mode (" in x)
        shutil.rmtree(cache, ignore_errors=True)
    targets = (1.6, 1.25) if label == "auto" else (None, None)
    note = f"  [{'; '.join(sorted(modes))}]"
    line(f"demo {label}, cold (empty MF_EXT_CACHE)", statistics.median(cold), base, targets[0], note)
    line(f"demo {label}, warm (second run)", statistics.median(warm), base, targets[1])


def write_llama(folder: Path, *, hidden=1024, layers=19, inter=2816, vocab=1280, heads=16, kv_heads=8) -> int:
    """A random fp32 HF ``LlamaForCausalLM`` folder (config.json + one model.safetensors); returns its bytes."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    head_dim = hidden // heads
    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    tensors = {"model.embed_tokens.weight": w(vocab, hidden), "model.norm.weight": np.ones(hidden, np.float32)}
    tensors["lm_head.weight"] = w(vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[p + "self_attn.q_proj.weight"] = w(heads * head_dim, hidden)
        tensors[p + "self_attn.k_proj.weight"] = w(kv_heads * head_dim, hidden)
        tensors[p + "self_attn.v_proj.weight"] = w(kv_heads * head_dim, hidden)
        tensors[p + "self_attn.o_proj.weight"] = w(hidden, heads * head_dim)
        tensors[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        tensors[p + "mlp.up_proj.weight"] = w(inter, hidden)
        tensors[p + "mlp.down_proj.weight"] = w(hidden, inter)
        tensors[p + "input_layernorm.weight"] = np.ones(hidden, np.float32)
        tensors[p + "post_attention_layernorm.weight"] = np.ones(hidden, np.float32)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": 1024,
        "eos_token_id": 1025,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return sum(a.nbytes for a in tensors.values())


HF_SCRIPT = """
import sys, time, json
t0 = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
ids = torch.tensor([json.loads(sys.argv[2])])
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=0)
from transformers import PreTrainedTokenizerFast
tok = PreTrainedTokenizerFast(tokenizer_file=sys.argv[3])
print("TEXT", tok.decode(out[0].tolist(), skip_special_tokens=True), flush=True)
"""


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def big_model(tmp: Path, base: float, repeat: int) -> None:
    hf = tmp / "llama-1gb"
    t0 = time.perf_counter()
    size = write_llama(hf)
    print(
        f"\n~1 GB HF Llama folder: {size / 1e9:.2f} GB of fp32 safetensors written in {time.perf_counter() - t0:.1f} s"
    )
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(PLUGIN / "demo" / "hf" / "tokenizer.json"))
    ids = [1024] + tok(PROMPT, add_special_tokens=False)["input_ids"]
    ours, theirs, written, blocks = [], [], [], []
    token_ours, same = None, []
    for i in range(repeat):
        cache, out = tmp / f"cache-1gb-{i}", tmp / f"out-1gb-{i}"
        cmd = [*demo_cmd(out, "--convert", str(hf), "--max_new_tokens", "1"), "--model.model_config.eos_token_id", "-1"]
        t, res, ob = run(cmd, env_with(MF_EXT_CACHE=cache))
        ours.append(t)
        written.append(du(cache) + du(out))
        blocks.append(ob * 512)
        shutil.rmtree(cache, ignore_errors=True)
        token_ours = next((x for x in res.stderr.splitlines() if " mode (" in x), "")
        text_ours = res.stdout.strip().splitlines()[-1]
        tok_file = str(PLUGIN / "demo" / "hf" / "tokenizer.json")
        t, res, _ = run([sys.executable, "-c", HF_SCRIPT, str(hf), json.dumps(ids), tok_file], env_with())
        theirs.append(t)
        text_hf = next(x for x in res.stdout.splitlines() if x.startswith("TEXT "))[5:]
        same.append(text_ours == text_hf)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{'predict --convert, start to first token':<44} {a:>8.2f} {a / base:>8.2f}x import  {token_ours.strip()}")
    print(f"{'HF from_pretrained + generate (1 token)':<44} {b:>8.2f} {b / base:>8.2f}x import")
    print(f"same greedy first token as HF: {'yes' if all(same) else 'NO'} ({text_hf!r})")
    print(
        f"ours / HF: {a / b:.2f}x; disk written by our run: {max(written)} bytes of new files (cache + output), "
        f"{max(blocks)} bytes by the kernel's block count (includes logs)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-1gb", action="store_true", help="skip the ~1 GB HF folder comparison")
    ap.add_argument("--skip-modes", action="store_true", help="skip the demo with --mode 0 and --mode 1")
    args = ap.parse_args()
    py = sys.executable
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
        f"{os.cpu_count()} cores, median of {args.repeat}"
    )
    base = statistics.median(run([py, "-c", "import mindformers"], env_with())[0] for _ in range(args.repeat))
    print(f"{'command':<44} {'median s':>8} {'vs import':>9}")
    print(f"{BASE_NAME:<44} {base:>8.2f} {1.0:>8.2f}x")
    for name, cmd in [
        ("run_mindformer_ext.py --help", [py, "run_mindformer_ext.py", "--help"]),
        ("mf-ext --help", [py, "-m", "mf_ext.cli", "--help"]),
        ("mf-ext convert --help", [py, "-m", "mf_ext.cli", "convert", "--help"]),
    ]:
        t = statistics.median(run(cmd, env_with())[0] for _ in range(args.repeat))
        line(name, t, base, note="" if t <= 1.0 else "  (> 1 s target)")
    with tempfile.TemporaryDirectory(prefix="mf-ext-startup-") as d:
        tmp = Path(d)
        demo(tmp, base, args.repeat, "auto")
        if not args.skip_modes:
            demo(tmp, base, args.repeat, "--mode 0", "--mode", "0")
            demo(tmp, base, args.repeat, "--mode 1", "--mode", "1")
        if not args.skip_1gb:
            big_model(tmp, base, args.repeat)
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
