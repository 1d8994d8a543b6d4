"""The LoRA the trainer runs is the LoRA that is exported: the training forward (our ``LoRALinear`` cells, targets from
the family's ``lora_targets``) gives the logits that HF transformers gives on the merged export, and that PEFT gives
with the exported adapter on the base model (PEFT applies ``lora_alpha / r`` itself: an independent scaling)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from mf_ext.registry import plugin_for_model
from tests.family_parity import hf_logits, load_family_model, prompt_ids, reference_checkpoint, reference_model

RANK, ALPHA = 4, 24.0  # scale alpha / r = 6, far from alpha itself


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    import mindspore as ms

    import mf_ext
    from mf_ext.train.lora import LoraSettings, apply_lora

    root = tmp_path_factory.mktemp("lora")
    plugin = plugin_for_model("llama")
    fam = plugin.family
    src = reference_checkpoint(fam, reference_model(fam, "mqa_untied"), root / "hf")
    plugin.convert_pt_to_ms(str(src), str(root / "base.ckpt"), progress=False)
    model = load_family_model(plugin, root / "base.ckpt", mode=1, use_past=False)
    targets = apply_lora(model, LoraSettings(rank=RANK, alpha=ALPHA))  # target_modules: the family's default
    rng = np.random.RandomState(0)
    for p in model.get_parameters():
        if p.name.endswith((".lora_a", ".lora_b")):  # lora_b starts at zero: give both real values
            p.set_data(ms.Tensor((rng.randn(*p.shape) * 0.2).astype(np.float32)))
    ids = prompt_ids(fam.reference.tiny["mqa_untied"]["vocab_size"])
    trained = mf_ext.logits(model, ids)
    ckpt = root / "lora.ckpt"
    ms.save_checkpoint(model, str(ckpt))
    shutil.copy(root / "base.ckpt.config.json", root / "lora.ckpt.config.json")
    return {
        "root": root,
        "plugin": plugin,
        "src": src,
        "ckpt": ckpt,
        "ids": ids,
        "trained": trained,
        "targets": targets,
    }


def test_default_targets_are_the_familys(lora_run):
    import re

    pattern = re.compile(lora_run["plugin"].family.lora_targets)
    assert lora_run["targets"] and all(pattern.fullmatch(t) for t in lora_run["targets"])
    assert any(t.endswith(".wq") for t in lora_run["targets"])


def test_training_forward_equals_the_merged_hf_export(lora_run):
    from transformers import AutoModelForCausalLM

    from mf_ext.train.export import export_merged_hf

    out = lora_run["root"] / "merged"
    export_merged_hf(lora_run["ckpt"], out, lora_run["plugin"], lora_scale=ALPHA / RANK)
    merged = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval().float()
    diff = np.abs(hf_logits(merged, lora_run["ids"]) - lora_run["trained"]).max()
    assert diff <= 1e-4, diff
    base = AutoModelForCausalLM.from_pretrained(lora_run["src"], attn_implementation="eager").eval().float()
    assert np.abs(hf_logits(base, lora_run["ids"]) - lora_run["trained"]).max() > 1e-2  # LoRA changed the model


def test_training_forward_equals_peft_on_the_exported_adapter(lora_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mf_ext.train.export import export_peft

    out = lora_run["root"] / "adapter"
    export_peft(lora_run["ckpt"], out, lora_run["plugin"], alpha=ALPHA, base_model=str(lora_run["src"]))
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert (cfg["r"], cfg["lora_alpha"]) == (RANK, ALPHA)
    base = AutoModelForCausalLM.from_pretrained(lora_run["src"], attn_implementation="eager").eval().float()
    peft = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        got = peft(torch.tensor(lora_run["ids"])).logits.float().numpy()
    diff = np.abs(got - lora_run["trained"]).max()
    assert diff <= 1e-4, diff


def test_no_target_modules_and_no_family_default_is_a_one_line_error():
    from mf_ext.config import ConfigError
    from mf_ext.train.lora import LoraSettings, default_targets

    assert LoraSettings.from_pet_config({"pet_type": "lora"}).target_modules is None  # the family decides
    with pytest.raises(ConfigError, match=r"target_modules: not set, and \w+ \(not from a family folder\) declares no"):
        default_targets(object())
