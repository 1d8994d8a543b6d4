"""``mf-ext verify`` passes on a faithful conversion and fails (exit 1, differing logits) on a wrong one."""

from __future__ import annotations

import pytest

from mf_ext.convert.verify import main
from tests.convert.convert_helpers import LLAMA, plugin
from tests.hf_fixtures import LLAMA31_ROPE_SCALING, make_hf_llama

pytest.importorskip("mindspore")


def test_verify_pass_and_fail(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MindFormers writes ./output/log
    good = make_hf_llama(tmp_path / "hf", rope_scaling=LLAMA31_ROPE_SCALING, num_kv_heads=2)
    other = make_hf_llama(tmp_path / "hf2", rope_scaling=LLAMA31_ROPE_SCALING, num_kv_heads=2, seed=5)
    plugin("llama").convert_pt_to_ms(good, tmp_path / "good.ckpt", progress=False)
    plugin("llama").convert_pt_to_ms(other, tmp_path / "other.ckpt", progress=False)
    base = ["--register_path", str(LLAMA), "--hf_path", str(good), "--steps", "4", "--mode", "1", "--seq", "8"]
    assert main([*base, "--ms_path", str(tmp_path / "good.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "greedy tokens: 4/4 agree" in out and out.strip().endswith("PASS")
    diff = float(out.split("max |delta logits| = ")[1].split()[0])
    assert diff <= 1e-4
    # fused checkpoint: verify switches the model to qkv_concat by itself; no --register_path/--model: the family
    # is the one that reads config.json's architectures, its YAML the family's predict YAML
    plugin("llama").convert_pt_to_ms(good, tmp_path / "fused.ckpt", qkv_concat=True, progress=False)
    assert main([*base[2:], "--ms_path", str(tmp_path / "fused.ckpt")]) == 0
    assert capsys.readouterr().out.strip().endswith("PASS")
    assert main([*base, "--ms_path", str(tmp_path / "other.ckpt")]) == 1
    out = capsys.readouterr().out
    assert out.strip().endswith("FAIL")
    assert main([*base, "--ms_path", str(tmp_path / "missing.ckpt")]) == 1
    assert "--ms_path" in capsys.readouterr().err
