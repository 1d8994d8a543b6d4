"""Start-up choices of predict: ``mode: auto`` by the size of the work, and the compile cache's key (a changed
model, run shape, mf-ext or plug-in code never reuses a graph compiled for something else)."""

from __future__ import annotations

import pytest

from mf_ext.api import AUTO_EAGER_LAYER_STEPS, choose_mode, compile_cache_dir, parse_mode
from mf_ext.config import ConfigError
from tests.test_launcher import DEMO_YAML, PLUGIN


def test_auto_mode_by_layer_steps():
    assert choose_mode(4, 1, 4) == (1, False)  # 20 layer steps: PyNative throughout
    assert choose_mode(4, 1, 39) == (0, True)  # the README demo: decode graph, eager prefill
    assert choose_mode(32, 16, 63) == (0, False)  # a long prompt on a deep model: both graphs
    assert choose_mode(1, 1, AUTO_EAGER_LAYER_STEPS - 1) == (1, False)
    assert choose_mode(1, 1, AUTO_EAGER_LAYER_STEPS) == (0, True)


@pytest.mark.parametrize(("value", "want"), [(0, 0), (1, 1), ("auto", "auto"), ("PYNATIVE_MODE", 1), (None, "auto")])
def test_parse_mode(value, want):
    assert parse_mode(value) == want


def test_parse_mode_refuses_others():
    with pytest.raises(ConfigError, match="context.mode: expected 0 .GRAPH_MODE., 1 .PYNATIVE_MODE. or auto, got 2"):
        parse_mode(2)


def test_compile_cache_key(tmp_path, monkeypatch):
    from mf_ext.api import build_model_from_config
    from mf_ext.config import load_config

    monkeypatch.setenv("MF_EXT_CACHE", str(tmp_path))
    small = {"model.model_config.num_layers": 1, "model.model_config.hidden_size": 32}
    cfg = load_config(DEMO_YAML, PLUGIN, small)
    model = build_model_from_config(cfg, mode=1)
    key = compile_cache_dir(cfg, model, [[256], True])
    assert key.parent == tmp_path / "compile"
    assert compile_cache_dir(cfg, model, [[256], True]) == key  # deterministic
    assert compile_cache_dir(cfg, model, [[512], True]) != key  # other buffer length
    assert compile_cache_dir(cfg, model, [[256], False]) != key  # prefill compiled too
    cfg.model.model_config["compute_dtype"] = "bfloat16"
    assert compile_cache_dir(cfg, model, [[256], True]) != key  # other dtype / architecture / run setting
    cfg.model.model_config["compute_dtype"] = "float32"
    import mindspore

    monkeypatch.setattr(mindspore, "__version__", "0.0.0")
    assert compile_cache_dir(cfg, model, [[256], True]) != key  # other MindSpore
