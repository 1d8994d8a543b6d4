"""Shared set-up for the finetune tests: a tiny random HF Llama 3.1, a BPE tokenizer, MindRecord data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.data.sft_tokenizers import DEMO_DATA, family_chat_template, make_bpe_tokenizer_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

YAML = REPO / "research" / "llama3_1" / "finetune.yaml"
PLUGIN = REPO / "research" / "llama3_1"
VOCAB = 384


def make_workspace(root: Path, seq_length: int = 64) -> dict[str, Path]:
    """HF model (GQA, Llama 3.1 rope scaling), tokenizer, demo MindRecord; conversions cached under ``root``."""
    from mf_ext.data.preprocess import preprocess
    from tests.hf_fixtures import LLAMA31_ROPE_SCALING, make_hf_llama

    os.environ["MF_EXT_CACHE"] = str(root / "cache")
    hf = make_hf_llama(root / "hf", vocab_size=VOCAB, rope_scaling=LLAMA31_ROPE_SCALING, seed=1)
    tok_dir = make_bpe_tokenizer_dir(root / "tok", vocab_size=VOCAB)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    data = root / "demo.mindrecord"
    preprocess(tok, DEMO_DATA, data, seq_length, progress=False, chat_template=family_chat_template())
    return {"root": root, "hf": hf, "tok": tok_dir, "data": data}


def write_rows(path: Path, rows: np.ndarray) -> Path:
    """A MindRecord whose every position is a target (labels == ids): equal token counts on every rank."""
    from mf_ext.data.mindrecord import write_mindrecord

    write_mindrecord(((r.tolist(), r.tolist()) for r in rows), path)
    return path


def run_launcher(*args: str, timeout: int = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(REPO / "run_mindformer_ext.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=env,
    )


def step_losses(stdout: str) -> list[float]:
    return [
        float(line.split(" loss ")[1].split()[0])
        for line in stdout.splitlines()
        if " step " in line and " loss " in line and line.startswith("[mf-ext] epoch")
    ]


def hf_logits(hf_dir: Path, ids: np.ndarray) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        return m(torch.tensor(ids, dtype=torch.long)).logits.numpy()


def ms_logits(model, ids: np.ndarray) -> np.ndarray:
    import mindspore as ms

    model.set_train(False)
    return model(ms.Tensor(ids, ms.int32)).asnumpy()


def read_hf_config(hf: Path) -> dict:
    return json.loads((hf / "config.json").read_text())
