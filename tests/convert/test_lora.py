"""MindFormers LoRA weights (MindPet names) -> PEFT adapter: PEFT loads it onto the converted base model and
reproduces the logits of the base model with ``W + alpha/r * B @ A`` merged by hand (an independent reference),
including LoRA on the fused ``w_qkv`` / ``w_gate_hidden`` cells."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.convert.convert_helpers import plugin
from tests.hf_fixtures import make_hf_llama

ms = pytest.importorskip("mindspore")

RANK, ALPHA = 4, 8


def _add_lora(ckpt, out, cells: dict[str, tuple[int, int]], seed=0):
    """Append MindPet-named LoRA pairs (rank, in) / (out, rank) with mindspore.save_checkpoint."""
    params = ms.load_checkpoint(str(ckpt))
    rng = np.random.RandomState(seed)
    lora = {}
    for cell, (n_out, n_in) in cells.items():
        a = (rng.randn(RANK, n_in) * 0.2).astype(np.float32)
        b = (rng.randn(n_out, RANK) * 0.2).astype(np.float32)
        lora[cell] = (a, b)
        params[f"{cell}.mindpet_delta_lora_a"] = ms.Parameter(ms.Tensor(a), name=f"{cell}.mindpet_delta_lora_a")
        params[f"{cell}.mindpet_delta_lora_b"] = ms.Parameter(ms.Tensor(b), name=f"{cell}.mindpet_delta_lora_b")
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items()], str(out))
    return lora


def _logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float().numpy()


@pytest.mark.parametrize("qkv_concat", [False, True])
def test_lora_exports_to_peft(tmp_path, qkv_concat):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    src = make_hf_llama(tmp_path / "hf", num_heads=4, num_kv_heads=2)
    cfg = json.loads((src / "config.json").read_text())
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    kv = h // 4 * 2
    plugin("llama").convert_pt_to_ms(src, tmp_path / "base.ckpt", qkv_concat=qkv_concat, progress=False)
    if qkv_concat:
        cells = {
            "model.layers.0.attention.w_qkv": (h + 2 * kv, h),
            "model.layers.1.feed_forward.w_gate_hidden": (2 * inter, h),
            "model.layers.1.attention.wo": (h, h),
        }
    else:
        cells = {
            "model.layers.0.attention.wq": (h, h),
            "model.layers.0.attention.wv": (kv, h),
            "model.layers.1.feed_forward.w2": (h, inter),
        }
    lora = _add_lora(tmp_path / "base.ckpt", tmp_path / "lora.ckpt", cells)
    (tmp_path / "lora.ckpt.config.json").write_text((tmp_path / "base.ckpt.config.json").read_text())
    plugin("llama").convert_ms_to_pt(
        tmp_path / "lora.ckpt", tmp_path / "out", progress=False, lora_alpha=ALPHA, print_fn=lambda *a: None
    )
    adapter = tmp_path / "out_lora"
    acfg = json.loads((adapter / "adapter_config.json").read_text())
    assert acfg["r"] == RANK and acfg["lora_alpha"] == ALPHA and acfg["peft_type"] == "LORA"

    base = AutoModelForCausalLM.from_pretrained(tmp_path / "out", attn_implementation="eager").eval()
    ids = np.random.RandomState(1).randint(0, 256, (1, 10))
    without = _logits(base, ids)
    peft_model = PeftModel.from_pretrained(base, adapter).eval()
    got = _logits(peft_model, ids)

    # reference: merge by hand into the original HF model, de-fusing the deltas with explicit index arithmetic
    ref_model = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
    sd = ref_model.state_dict()
    scale = ALPHA / RANK
    for cell, (a, b) in lora.items():
        delta = torch.from_numpy(b @ a) * scale
        layer = cell.split(".")[2]
        pre = f"model.layers.{layer}."
        if cell.endswith("w_qkv"):
            hd, groups, rep = h // 4, 2, 2
            rows = delta.reshape(groups, (rep + 2) * hd, h)
            q = rows[:, : rep * hd].reshape(-1, h)
            k = rows[:, rep * hd : (rep + 1) * hd].reshape(-1, h)
            v = rows[:, (rep + 1) * hd :].reshape(-1, h)
            for nm, d in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                sd[pre + f"self_attn.{nm}.weight"] += d
        elif cell.endswith("w_gate_hidden"):
            sd[pre + "mlp.gate_proj.weight"] += delta[0::2]
            sd[pre + "mlp.up_proj.weight"] += delta[1::2]
        else:
            hf = {
                "attention.wq": "self_attn.q_proj",
                "attention.wv": "self_attn.v_proj",
                "attention.wo": "self_attn.o_proj",
                "feed_forward.w2": "mlp.down_proj",
            }[cell.split(".", 3)[3]]
            sd[pre + hf + ".weight"] += delta
    ref_model.load_state_dict(sd)
    ref = _logits(ref_model, ids)
    assert np.abs(got - ref).max() < 1e-5
    assert np.abs(got - without).max() > 1e-3  # the adapter really changes the output
