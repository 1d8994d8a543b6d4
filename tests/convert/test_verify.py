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


def test_verify_greedy_through_an_eos_token(tmp_path, capsys, monkeypatch):
    """A model whose greedy path emits its eos token: both sides keep decoding through it (HF's ``min_new_tokens``
    used to mask the eos logit on the HF side only, so a faithful conversion failed)."""
    import json

    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.chdir(tmp_path)
    src = make_hf_llama(tmp_path / "hf", num_kv_heads=2, seed=3)
    ids = np.random.RandomState(0).randint(0, 256, (1, 8))  # verify's default ids for --seq 8
    hf = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
    with torch.no_grad():
        seq = torch.tensor(ids)
        for _ in range(2):
            seq = torch.cat([seq, hf(seq).logits[:, -1:].argmax(-1)], dim=1)
    cfg = json.loads((src / "config.json").read_text())
    cfg["eos_token_id"] = int(seq[0, -1])  # the 2nd greedy token is eos
    (src / "config.json").write_text(json.dumps(cfg))
    (src / "generation_config.json").unlink(missing_ok=True)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    args = ["--register_path", str(LLAMA), "--hf_path", str(src), "--ms_path", str(tmp_path / "w.ckpt")]
    assert main([*args, "--steps", "4", "--mode", "1", "--seq", "8"]) == 0, capsys.readouterr().out
    assert "greedy tokens: 4/4 agree" in capsys.readouterr().out
