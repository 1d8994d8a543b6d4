"""2-worker data-parallel finetune under msrun (CPU, loopback): both ranks end with identical weights, equal to a
single-process run on the concatenated batches."""

from __future__ import annotations

import shutil
import socket
import subprocess

import numpy as np
import pytest

from tests.train.ft_helpers import PLUGIN, REPO, VOCAB, YAML, write_rows

pytestmark = pytest.mark.skipif(shutil.which("msrun") is None, reason="msrun (MindSpore launcher) not on PATH")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_msrun_two_workers_equal_single_process(tmp_path, monkeypatch):
    import os

    from mf_ext.api import prepare
    from mf_ext.train import finetune
    from mf_ext.train.export import model_params
    from tests.hf_fixtures import make_hf_llama

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    hf = make_hf_llama(tmp_path / "hf", vocab_size=VOCAB, seed=3)
    # every position is a target, so each rank's mean loss weighs the same number of tokens as the global mean
    rows = np.random.default_rng(0).integers(0, VOCAB, size=(16, 33))
    data = write_rows(tmp_path / "rows.mindrecord", rows)
    common = ["runner_config.epochs=1", "lr_schedule.learning_rate=0.003", "optimizer.eps=1.e-6"]
    # convert once here; the workers' --convert then hits the cache (no two processes converting at once)
    cfg, _, ckpt = prepare(str(YAML), str(PLUGIN), convert=str(hf), overrides=[*common, "runner_config.batch_size=4"])

    out = tmp_path / "dp"
    args = [
        "--config", str(YAML), "--register_path", str(PLUGIN), "--run_mode", "finetune", "--convert", str(hf),
        "--train_dataset", str(data), "--output_dir", str(out), "--use_parallel", "True", "--batch_size", "2",
        "--epochs", "1", "--lr_schedule.learning_rate", "0.003", "--optimizer.eps", "1.e-6",
    ]  # fmt: skip
    cmd = [
        "timeout", "240", "msrun", "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}", f"--log_dir={tmp_path / 'msrun_log'}", "--join=True",
        str(REPO / "run_mindformer_ext.py"), *args,
    ]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ, GLOG_v="3"))
    logs = "\n".join(p.read_text(errors="replace") for p in sorted((tmp_path / "msrun_log").glob("*.log")))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:] + logs[-4000:]
    assert logs.count("2 device(s) x batch 2, 4 steps/epoch") == 2  # both workers, each with half the batch
    ranks = [model_params(next((out / "checkpoint" / f"rank_{i}").glob("*-1_4.ckpt"))) for i in (0, 1)]

    single = finetune(cfg, train_dataset=data, output_dir=tmp_path / "single", load_checkpoint=ckpt, progress=False)
    assert single.steps == 4
    ref = model_params(single.checkpoints[-1])
    moved = 0.0
    for k, v in ref.items():
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=f"rank 0 vs 1: {k}")
        assert np.abs(ranks[0][k] - v).max() <= 1e-6, k
        moved = max(moved, float(np.abs(v - model_params(ckpt)[k]).max()))
    assert moved > 1e-3  # training really changed the weights
