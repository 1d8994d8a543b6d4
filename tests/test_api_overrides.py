"""Explicit ``model.model_config`` overrides win over what ``--convert``'s config.json decides."""

from __future__ import annotations

import json
from pathlib import Path

from mf_ext.api import prepare

REPO = Path(__file__).resolve().parents[1]
DEMO_YAML = REPO / "research/llama3_1/predict_demo.yaml"
DEMO_HF = REPO / "research/llama3_1/demo/hf"


def test_explicit_model_config_override_beats_config_json(tmp_path, monkeypatch):
    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path / "cache"))
    hf = json.loads((DEMO_HF / "config.json").read_text())
    register = REPO / "research/llama3_1"
    cfg, _, _ = prepare(DEMO_YAML, register, convert=DEMO_HF)
    assert cfg.model.model_config.num_layers == hf["num_hidden_layers"]
    assert cfg.model.model_config.eos_token_id == hf["eos_token_id"]
    wanted = hf["eos_token_id"] + 1
    cfg, _, _ = prepare(DEMO_YAML, register, convert=DEMO_HF, overrides=[f"model.model_config.eos_token_id={wanted}"])
    assert cfg.model.model_config.eos_token_id == wanted
    assert cfg.model.model_config.num_layers == hf["num_hidden_layers"]  # the rest still comes from config.json
