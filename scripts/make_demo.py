"""Build the embedded Llama 3 demo: a tiny byte-level BPE tokenizer and a tiny Llama-3-architecture model.

Regenerate every committed artifact (deterministic: fixed seeds, one CPU thread; ~2-3 min on one core)::

    python scripts/make_demo.py

Check that the committed artifacts are what this script produces, without touching them::

    python scripts/make_demo.py --check

Inputs:  research/llama3_1/demo/corpus.txt (self-written text, English with a little Chinese and Python).
Outputs: research/llama3_1/demo/tokenizer.model          tiktoken BPE file (what ``Llama3Tokenizer`` reads)
         research/llama3_1/demo/hf/                       HF ``LlamaForCausalLM`` folder: config.json,
                                                          generation_config.json, model.safetensors (fp32),
                                                          tokenizer.json + tokenizer_config.json (same ids)

Steps: (1) train a byte-level BPE with HF ``tokenizers`` using the Llama 3 pre-tokenizer regex, (2) export its
merges as tiktoken ranks (bytes 0..255 = ranks 0..255, then one rank per merge), (3) derive ``tokenizer.json``
from those ranks exactly as ``Llama3TokenizerFast`` does, (4) train a 4-layer GQA Llama with llama3 ``rope_scaling``
on the corpus with transformers + torch, (5) check greedy continuations of corpus prompts and save.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "research" / "llama3_1" / "demo"
TOKENIZER_PY = REPO / "research" / "llama3_1" / "llama3_1_tokenizer.py"

SEED = 1234
NUM_MERGES = 768  # base vocab 256 + 768 = 1024 tokens, + 256 Llama 3 special tokens = 1280
MODEL = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,  # GQA, as Llama 3.1 (8B: 32 heads, 8 kv heads)
    "max_position_embeddings": 2048,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    # Llama 3.1's scaling with a small original context, so it actually changes the low-frequency dims here.
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256,
    },
}
TRAIN = {"steps": 500, "batch_size": 16, "seq_len": 128, "lr": 3e-3, "warmup": 50, "weight_decay": 0.01}
PROMPTS = [
    "On a small island at the edge of a cold grey sea",
    "Question: What are the four things every loaf needs?\nAnswer:",
    "The Great Bear is",
]


def load_tokenizer_module():
    """Import the plug-in's tokenizer file by path (it has no relative imports)."""
    spec = importlib.util.spec_from_file_location("_demo_llama3_1_tokenizer", TOKENIZER_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def train_bpe_ranks(text: str, num_merges: int, tokmod) -> dict[bytes, int]:
    """Train a byte-level BPE with the Llama 3 regex and return tiktoken ranks {token bytes: rank}."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(tokmod.LLAMA3_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=256 + num_merges,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator([text], trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    ranks = {bytes([b]): b for b in range(256)}
    for pair in merges:
        left, right = pair if isinstance(pair, list) else pair.split(" ")
        merged = tokmod.token_str_to_bytes(left) + tokmod.token_str_to_bytes(right)
        if merged not in ranks:
            ranks[merged] = len(ranks)
    return ranks


def write_tokenizer_files(ranks: dict[bytes, int], out_demo: Path, out_hf: Path, tokmod) -> None:
    tokmod.write_tiktoken_bpe_file(ranks, out_demo / "tokenizer.model")
    hf_tok = tokmod.tiktoken_to_hf_tokenizer(ranks, tokmod.llama3_special_tokens())
    hf_tok.save(str(out_hf / "tokenizer.json"))
    base = len(ranks)
    specials = tokmod.llama3_special_tokens()
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": MODEL["max_position_embeddings"],
        "chat_template": tokmod.LLAMA3_CHAT_TEMPLATE,
        "added_tokens_decoder": {
            str(base + i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, t in enumerate(specials)
        },
    }
    (out_hf / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    special_map = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
    (out_hf / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")


def train_model(ids: list[int], vocab_size: int, bos_id: int, eos_id: int, out_hf: Path):
    import torch
    from tqdm import tqdm
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)  # reproducible reductions, and polite on a shared machine
    torch.manual_seed(SEED)
    random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        attn_implementation="eager",
        **MODEL,
    )
    model = LlamaForCausalLM(cfg)
    data = torch.tensor(ids, dtype=torch.long)
    seq, bs, steps = TRAIN["seq_len"], TRAIN["batch_size"], TRAIN["steps"]
    gen = torch.Generator().manual_seed(SEED)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": TRAIN["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=TRAIN["lr"],
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        import math

        if step < TRAIN["warmup"]:
            return (step + 1) / TRAIN["warmup"]
        frac = (step - TRAIN["warmup"]) / max(1, steps - TRAIN["warmup"])
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    bar = tqdm(range(steps), desc="train", unit="step", mininterval=2.0)
    loss_val = float("nan")
    for step in bar:
        starts = torch.randint(0, len(data) - seq, (bs,), generator=gen)
        batch = torch.stack([data[s : s + seq] for s in starts.tolist()])
        out = model(input_ids=batch, labels=batch)  # HF shifts labels: position t predicts token t + 1
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_val = out.loss.item()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss_val:.3f}")
    model.eval()
    model.generation_config.do_sample = False
    model.generation_config.temperature = None
    model.generation_config.top_p = None
    model.save_pretrained(out_hf, safe_serialization=True)
    return model, loss_val


def greedy_samples(model, tokmod, vocab_file: Path, max_new_tokens: int = 40) -> list[tuple[str, str]]:
    import torch

    tok = tokmod.Llama3Tokenizer(str(vocab_file))
    out = []
    for prompt in PROMPTS:
        ids = tok(prompt)["input_ids"]
        with torch.no_grad():
            x = torch.tensor([ids])
            gen = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        out.append((prompt, tok.decode(gen[0, len(ids) :].tolist(), skip_special_tokens=True)))
    return out


def build(out_demo: Path) -> dict:
    """Write tokenizer.model and hf/ into ``out_demo`` (which must exist); return a summary."""
    tokmod = load_tokenizer_module()
    out_hf = out_demo / "hf"
    out_hf.mkdir(parents=True, exist_ok=True)
    text = (DEMO / "corpus.txt").read_text(encoding="utf-8")
    t0 = time.perf_counter()
    ranks = train_bpe_ranks(text, NUM_MERGES, tokmod)
    write_tokenizer_files(ranks, out_demo, out_hf, tokmod)
    t_tok = time.perf_counter() - t0

    tok = tokmod.Llama3Tokenizer(str(out_demo / "tokenizer.model"))
    # One document per paragraph block would cut context; the corpus is short, so train on it as one stream
    # that starts with <|begin_of_text|> (the model then sees BOS as it will at inference).
    ids = tok(text)["input_ids"] + [tok.eos_token_id]
    t0 = time.perf_counter()
    model, loss = train_model(ids, len(tok), tok.bos_token_id, tok.eos_token_id, out_hf)
    t_train = time.perf_counter() - t0
    samples = greedy_samples(model, tokmod, out_demo / "tokenizer.model")
    return {
        "corpus_bytes": len(text.encode()),
        "corpus_tokens": len(ids),
        "vocab": len(tok),
        "final_loss": round(loss, 4),
        "tokenizer_seconds": round(t_tok, 1),
        "train_seconds": round(t_train, 1),
        "samples": samples,
    }


ARTIFACTS = [
    "tokenizer.model",
    "hf/config.json",
    "hf/generation_config.json",
    "hf/model.safetensors",
    "hf/tokenizer.json",
    "hf/tokenizer_config.json",
    "hf/special_tokens_map.json",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="rebuild in a temp dir and compare with the committed files"
    )
    args = parser.parse_args(argv)
    corpus = DEMO / "corpus.txt"
    if not corpus.is_file():
        print(f"error: corpus {str(corpus)!r} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix=".make_demo.", dir=DEMO) as tmp:
        tmp = Path(tmp)
        summary = build(tmp)
        for prompt, cont in summary.pop("samples"):
            print(f"--- greedy: {prompt!r}\n{cont!r}")
        sizes = {name: (tmp / name).stat().st_size for name in ARTIFACTS}
        summary["artifact_bytes"] = sum(sizes.values())
        print(json.dumps(summary, indent=2))
        if args.check:
            differ = [
                n for n in ARTIFACTS if not (DEMO / n).is_file() or not filecmp.cmp(tmp / n, DEMO / n, shallow=False)
            ]
            if differ:
                print(f"error: regenerated artifacts differ from the committed ones: {differ}", file=sys.stderr)
                return 1
            print("ok: committed demo artifacts match a fresh build byte for byte")
            return 0
        # Move into place only after everything was built: a failed run leaves the committed demo intact.
        (DEMO / "hf").mkdir(exist_ok=True)
        for name in ARTIFACTS:
            os.replace(tmp / name, DEMO / name)
        shutil.rmtree(tmp / "hf", ignore_errors=True)
    print(f"wrote {len(ARTIFACTS)} files under {DEMO.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
