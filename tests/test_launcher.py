"""run_mindformer_ext.py end to end: --convert an HF folder, predict, compare with HF transformers' own greedy text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hf_fixtures import LLAMA31_ROPE_SCALING, make_hf_llama

REPO = Path(__file__).resolve().parent.parent
DEMO_YAML = REPO / "research" / "llama3_1" / "predict_demo.yaml"
PLUGIN = REPO / "research" / "llama3_1"
DEMO_TOKENIZER_JSON = PLUGIN / "demo" / "hf" / "tokenizer.json"


def run_launcher(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MF_EXT_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, str(REPO / "run_mindformer_ext.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> Path:
    # A different architecture than the demo YAML declares (hidden 64, 3 layers, 1 kv head): --convert must take it
    # from config.json. The vocabulary matches the demo tokenizer so real text round-trips.
    return make_hf_llama(
        tmp_path_factory.mktemp("hf") / "tiny",
        vocab_size=1280,
        hidden_size=64,
        num_layers=3,
        num_heads=4,
        num_kv_heads=1,
        rope_scaling=LLAMA31_ROPE_SCALING,
        seed=3,
    )


def hf_greedy_text(hf_dir: Path, prompt: str, new_tokens: int) -> str:
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(DEMO_TOKENIZER_JSON))
    ids = [1024] + tok(prompt, add_special_tokens=False)["input_ids"]  # <|begin_of_text|> = 1024 in the demo vocab
    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    return tok.decode(out[0].tolist(), skip_special_tokens=True)


def hf_logits(hf_dir: Path, ids: np.ndarray) -> np.ndarray:
    """HF transformers' fp32 logits (bf16 weights are upcast exactly) for int ids."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor(ids, dtype=torch.long)).logits.numpy()


def predict_args(tmp_path: Path, prompt: str, n: int, *weights: str) -> list[str]:
    """Demo-YAML predict of exactly ``n`` tokens (eos disabled) into ``tmp_path/out``, with the given weight flags."""
    return [
        "--config",
        str(DEMO_YAML),
        "--register_path",
        str(PLUGIN),
        *weights,
        "--predict_data",
        prompt,
        "--max_new_tokens",
        str(n),
        "--output_dir",
        str(tmp_path / "out"),
        "--model.model_config.eos_token_id",
        "-1",
    ]


def test_predict_with_convert_matches_hf_greedy_text(tiny_hf, tmp_path):
    prompt, n = "The keeper climbed the stairs", 12
    cache = tmp_path / "cache"
    args = predict_args(tmp_path, prompt, n, "--convert", str(tiny_hf))
    # a rename-only mapping of safetensors: loaded in place; mode auto runs this small work in PyNative; so nothing
    # at all is written to the cache
    res = run_launcher(args, tmp_path, cache)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "in place" in res.stdout and "converting" not in res.stdout
    assert "PyNative mode (auto" in res.stderr
    assert not cache.exists()
    written = (tmp_path / "out" / "text_generation_result.txt").read_text().strip()
    assert written == hf_greedy_text(tiny_hf, prompt, n)
    assert written in res.stdout

    # an output dtype asked for: the conversion cache; graph mode asked for: its graphs go to the compile cache
    graph = [*args, "--convert_dtype", "float32", "--mode", "0"]
    res2 = run_launcher(graph, tmp_path, cache)
    assert res2.returncode == 0, res2.stderr[-3000:]
    assert "converting" in res2.stdout and "in place" not in res2.stdout
    assert "graph mode (as configured)" in res2.stderr
    assert list((cache / "convert").glob("*/model.ckpt")) and list((cache / "compile").rglob("*.mindir"))
    assert (tmp_path / "out" / "text_generation_result.txt").read_text().strip() == written

    # again: both caches are reused, the text is the same
    res3 = run_launcher(graph, tmp_path, cache)
    assert res3.returncode == 0, res3.stderr[-3000:]
    assert "using cached conversion" in res3.stdout and "converting" not in res3.stdout
    assert "compiled graphs from the cache" in res3.stderr
    assert (tmp_path / "out" / "text_generation_result.txt").read_text().strip() == written


def test_python_api_convert_logits_match_hf(tiny_hf, tmp_path, monkeypatch):

    import mf_ext

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    model = mf_ext.load_model(DEMO_YAML, register_path=PLUGIN, convert=tiny_hf, mode=1)
    assert model.config.hidden_size == 64 and model.config.num_layers == 3 and model.config.n_kv_heads == 1
    assert model.config.seq_length == 256  # a run setting: stays the YAML's
    ids = np.random.default_rng(0).integers(0, 1280, size=(2, 40)).astype(np.int32)
    ours = mf_ext.logits(model, ids)
    theirs = hf_logits(tiny_hf, ids)
    assert ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).max()) <= 1e-4


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--convert", "/nonexistent/hf"], "--convert: '/nonexistent/hf' is not a folder"),
        (["--predict_data"], "expected at least one argument"),
        (["--model.model_config.seq_length"], "has no value"),
        ([], "predict needs --predict_data"),
    ],
)
def test_launcher_bad_flags(tmp_path, extra, needle):
    res = run_launcher(["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), *extra], tmp_path, tmp_path / "c")
    assert res.returncode != 0
    assert needle in res.stderr


def test_convert_folder_without_weights_leaves_nothing(tmp_path):
    hf = tmp_path / "empty_hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    cache = tmp_path / "cache"
    res = run_launcher(
        ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--convert", str(hf), "--predict_data", "x"],
        tmp_path,
        cache,
    )
    assert res.returncode == 2
    assert "holds no weights" in res.stderr
    assert not cache.exists() or not any(cache.rglob("*.ckpt"))


def test_predict_without_weights_is_refused(tmp_path):
    res = run_launcher(
        ["--config", str(PLUGIN / "predict.yaml"), "--register_path", str(PLUGIN), "--predict_data", "hi"],
        tmp_path,
        tmp_path / "c",
    )
    assert res.returncode == 2
    assert "predict needs weights: pass --convert HF_DIR or --load_checkpoint" in res.stderr


def test_bf16_weights_load_into_an_fp32_model(tmp_path, monkeypatch):
    """A bf16 HF checkpoint (loaded in place: the mapping only renames) into the YAML's fp32 model upcasts exactly."""

    import mf_ext

    hf = make_hf_llama(tmp_path / "bf16", vocab_size=1280, dtype="bfloat16", seed=5)
    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    model = mf_ext.load_model(DEMO_YAML, register_path=PLUGIN, convert=hf, mode=1)
    ids = np.random.default_rng(1).integers(0, 1280, size=(1, 24)).astype(np.int32)
    assert float(np.abs(mf_ext.logits(model, ids) - hf_logits(hf, ids)).max()) <= 1e-4


def test_load_checkpoint_takes_the_architecture_kept_beside_it(tiny_hf, tmp_path):
    """A converted checkpoint runs with the demo YAML: its architecture comes from x.ckpt.config.json, and the YAML's
    own `convert:` is not run when --load_checkpoint is given (run mode predict_with_train_model, as MindFormers)."""
    from mf_ext.registry import load_plugin

    ckpt = tmp_path / "tiny.ckpt"
    load_plugin(PLUGIN).convert_pt_to_ms(str(tiny_hf), str(ckpt), progress=False)
    prompt, n = "The keeper climbed the stairs", 8
    # run_mindformer.py's predict_with_train_model: predict, with MindFormers' train-mode config template
    args = predict_args(tmp_path, prompt, n, "--load_checkpoint", str(ckpt), "--run_mode", "predict_with_train_model")
    res = run_launcher(args, tmp_path, tmp_path / "cache")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "converting" not in res.stdout and "load_checkpoint: architecture taken from" in res.stdout
    assert (tmp_path / "out" / "text_generation_result.txt").read_text().strip() == hf_greedy_text(tiny_hf, prompt, n)


def hf_perplexity(hf_dir: Path, rows: list[tuple[np.ndarray, np.ndarray]], batch_size: int) -> float:
    """MindFormers' PerplexityMetric with HF transformers' own loss: exp(mean over batches of the batch loss)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    losses = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            ids = torch.tensor(np.stack([r[0] for r in rows[start : start + batch_size]]), dtype=torch.long)
            labels = torch.tensor(np.stack([r[1] for r in rows[start : start + batch_size]]), dtype=torch.long)
            losses.append(float(model(input_ids=ids, labels=labels).loss))
    return float(np.exp(np.mean(losses)))


def test_eval_perplexity_matches_hf(tiny_hf, tmp_path):
    """--run_mode eval over a MindRecord made by `mf-ext data` and over its JSON input: HF's perplexity."""
    import mindspore.dataset as ds

    demo_json = PLUGIN / "demo_data" / "alpaca_demo.json"
    mindrecord = tmp_path / "eval.mindrecord"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    made = subprocess.run(
        [sys.executable, "-m", "mf_ext.cli", "data", "--register_path", str(PLUGIN), "--input", str(demo_json)]
        + ["--output", str(mindrecord), "--seq_length", "64"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    rows = [
        (r[0], r[1])
        for r in ds.MindDataset(
            str(mindrecord), columns_list=["input_ids", "labels"], shuffle=False
        ).create_tuple_iterator(output_numpy=True, num_epochs=1)
    ]
    assert len(rows) == 40 and rows[0][0].shape == (65,)
    want = hf_perplexity(tiny_hf, rows, batch_size=3)  # 14 batches, the last one of a single row

    results = {}
    for name, data, mode in (("mindrecord", mindrecord, "0"), ("json", demo_json, "1")):
        out = tmp_path / f"out_{name}"
        res = run_launcher(
            ["--config", str(DEMO_YAML), "--register_path", str(PLUGIN), "--run_mode", "eval", "--convert"]
            + [str(tiny_hf), "--eval_dataset_dir", str(data), "--batch_size", "3", "--mode", mode]
            + ["--model.model_config.seq_length", "64", "--output_dir", str(out)],
            tmp_path,
            tmp_path / "cache",
        )
        assert res.returncode == 0, res.stderr[-3000:]
        result = json.loads((out / "eval_result.json").read_text())
        assert result["batches"] == 14 and result["rows"] == 40
        assert f"'PPL': {result['PPL']}" in res.stdout
        results[name] = result["PPL"]
    assert abs(results["mindrecord"] - want) / want <= 1e-5, (results, want)
    assert abs(results["json"] - want) / want <= 1e-5, (results, want)
