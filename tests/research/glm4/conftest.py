"""Fixtures of the glm4 family tests: the plug-in and a tiny HF ``GlmForCausalLM`` with its ChatGLM twin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.research.glm4.chatglm_layout import to_chatglm

REPO = Path(__file__).resolve().parents[3]
PLUGIN_DIR = REPO / "research" / "glm4"


@pytest.fixture(scope="package")
def plugin():
    from mf_ext.registry import load_plugin

    return load_plugin(str(PLUGIN_DIR))


@pytest.fixture(scope="package")
def twins(tmp_path_factory, plugin):
    """(HF GlmForCausalLM model, its save_pretrained folder, the ChatGLM folder re-packed from it)."""
    import torch
    from safetensors.numpy import save_file
    from transformers import GlmConfig, GlmForCausalLM

    tiny = dict(plugin.family.reference.tiny["gqa_bias"])
    cfg = GlmConfig(**{**tiny, "rope_theta": 500000.0})  # ChatGLM3-32k's rope_ratio 50
    cfg._attn_implementation = "eager"
    torch.manual_seed(3)
    model = GlmForCausalLM(cfg).eval().float()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    base = tmp_path_factory.mktemp("glm_twins")
    model.save_pretrained(base / "hf")
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    tensors, config = to_chatglm(state, model.config.to_dict())
    (base / "chatglm").mkdir()
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(base / "chatglm" / "model.safetensors"))
    (base / "chatglm" / "config.json").write_text(json.dumps(config))
    return model, base / "hf", base / "chatglm"
