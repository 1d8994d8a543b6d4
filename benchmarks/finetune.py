"""Training-step throughput on CPU: our MindSpore finetune step vs HF transformers + torch, same model size.

    python benchmarks/finetune.py                      # default: hidden 256, 4 layers, seq 256, batch 4
    python benchmarks/finetune.py --hidden 512 --layers 8 --seq 512 --steps 10

Both sides run a full AdamW step (forward, loss on every position, backward, update) in fp32 on the same random
token batch; ours is the compiled (graph mode) step that `--run_mode finetune` uses. Prints tokens/s for each and
the ratio. Both use the same number of CPU threads (``--threads``, default 1).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def bench_ours(a, ids: np.ndarray) -> float:
    import mindspore as ms

    from mf_ext.registry import load_plugin
    from mf_ext.train.runner import _build_optimizer, _train_step_cell, lr_schedule

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU", runtime_num_threads=a.threads)
    ms.set_seed(0)
    plugin = load_plugin(str(REPO / "research" / "llama3_1"))
    cfg_cls = plugin.import_module("llama3_1_config").Llama3Config
    model_cls = plugin.import_module("llama3_1_model").Llama3ForCausalLM
    cfg = cfg_cls(
        hidden_size=a.hidden, num_layers=a.layers, num_heads=a.heads, n_kv_heads=a.kv_heads,
        intermediate_size=a.ffn, vocab_size=a.vocab, seq_length=a.seq, rope_scaling=None,
    )  # fmt: skip
    model = model_cls(cfg)
    model.set_train(True)
    params = [p for p in model.get_parameters() if p.requires_grad]
    opt = _build_optimizer({"type": "AdamW", "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0}, params,
                           lr_schedule({"type": "ConstantWarmUpLR", "learning_rate": 1e-4}, a.steps + a.warmup + 1))  # fmt: skip
    step = _train_step_cell(model, opt, 0.0)
    step.set_train(True)
    x = ms.Tensor(ids, ms.int32)
    for _ in range(a.warmup):  # includes graph compilation
        step(x, x).asnumpy()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step(x, x).asnumpy()
    return time.perf_counter() - t0


def bench_hf(a, ids: np.ndarray) -> float:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    cfg = LlamaConfig(
        hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
        intermediate_size=a.ffn, vocab_size=a.vocab, max_position_embeddings=a.seq, attn_implementation="eager",
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    # same token count as ours: we predict positions 1.. from 0..-1 of a seq+1 row
    x = torch.tensor(ids, dtype=torch.long)

    def one():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(a.warmup):
        one()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        one()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv_heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=688)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--seq", type=int, default=256, help="tokens trained per row (rows hold seq+1)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--threads", type=int, default=1,
        help="CPU threads for both (torch.set_num_threads / MindSpore runtime_num_threads); on a shared machine "
        "more threads than free cores makes torch's spinning thread pool many times slower",
    )  # fmt: skip
    a = p.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    ids = np.random.default_rng(0).integers(0, a.vocab, size=(a.batch, a.seq + 1)).astype(np.int64)
    tokens = a.batch * a.seq * a.steps
    t_hf = bench_hf(a, ids)
    t_ours = bench_ours(a, ids)
    print(f"model: hidden {a.hidden}, layers {a.layers}, heads {a.heads}/{a.kv_heads}, ffn {a.ffn}, vocab {a.vocab}; "
          f"batch {a.batch} x seq {a.seq}, {a.steps} timed AdamW steps (after {a.warmup} warm-up), fp32, CPU, "
          f"{a.threads} thread(s) each")  # fmt: skip
    print(f"HF transformers + torch : {tokens / t_hf:9.0f} tokens/s  ({1000 * t_hf / a.steps:.1f} ms/step)")
    print(f"ours (MindSpore graph)  : {tokens / t_ours:9.0f} tokens/s  ({1000 * t_ours / a.steps:.1f} ms/step)")
    print(f"ratio ours / HF         : {t_hf / t_ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
