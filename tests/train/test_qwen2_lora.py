"""LoRA on a family whose LoRA targets carry biases (Qwen2's q/k/v): the training forward keeps each wrapped layer's
bias, the finetune checkpoint holds it, and the merged HF export and PEFT's adapter on the base model (HF transformers
``Qwen2ForCausalLM``) give the training forward's logits."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from mf_ext.registry import plugin_for_model
from tests.family_parity import hf_logits, load_family_model, prompt_ids, reference_checkpoint, reference_model

RANK, ALPHA = 4, 24.0
TINY = "gqa_untied_yarn"


def test_lora_on_biased_projections_trains_and_exports(tmp_path):
    import mindspore as ms
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    import mf_ext
    from mf_ext.train.export import export_merged_hf, export_peft
    from mf_ext.train.lora import LoraSettings, apply_lora

    plugin = plugin_for_model("qwen2")
    fam = plugin.family
    src = reference_checkpoint(fam, reference_model(fam, TINY), tmp_path / "hf")  # biases perturbed away from 0
    plugin.convert_pt_to_ms(str(src), str(tmp_path / "base.ckpt"), progress=False)
    model = load_family_model(plugin, tmp_path / "base.ckpt", mode=1, use_past=False)
    ids = prompt_ids(fam.reference.tiny[TINY]["vocab_size"])
    before = mf_ext.logits(model, ids)
    targets = apply_lora(model, LoraSettings(rank=RANK, alpha=ALPHA))  # the family's default: wq|wk|wv|wo
    assert {t.rsplit(".", 1)[1] for t in targets} == {"wq", "wk", "wv", "wo"}
    np.testing.assert_allclose(mf_ext.logits(model, ids), before, atol=1e-6)  # lora_b = 0: the biases still count
    rng = np.random.RandomState(0)
    for p in model.get_parameters():
        if p.name.endswith((".lora_a", ".lora_b")):
            p.set_data(ms.Tensor((rng.randn(*p.shape) * 0.2).astype(np.float32)))
    trained = mf_ext.logits(model, ids)
    ckpt = tmp_path / "lora.ckpt"
    ms.save_checkpoint(model, str(ckpt))
    saved = ms.load_checkpoint(str(ckpt))
    assert all(f"{t}.bias" in saved for t in targets if not t.endswith(".wo")), "biases of LoRA layers not saved"
    shutil.copy(tmp_path / "base.ckpt.config.json", tmp_path / "lora.ckpt.config.json")

    merged_dir = export_merged_hf(ckpt, tmp_path / "merged", plugin, lora_scale=ALPHA / RANK)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, attn_implementation="eager").eval().float()
    assert np.abs(hf_logits(merged, ids) - trained).max() <= 1e-4

    adapter = export_peft(ckpt, tmp_path / "adapter", plugin, alpha=ALPHA, base_model=str(src))
    base = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval().float()
    assert np.abs(hf_logits(base, ids) - trained).max() > 1e-2  # LoRA changed the model
    peft = PeftModel.from_pretrained(base, adapter).eval()
    with torch.no_grad():
        got = peft(torch.tensor(ids)).logits.float().numpy()
    assert np.abs(got - trained).max() <= 1e-4
