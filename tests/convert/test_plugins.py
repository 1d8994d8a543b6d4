"""Every built-in plug-in that converts has both directions, and its spec round-trips bit-exactly on a
checkpoint generated from the spec itself (so a new family is covered the day it is added)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mf_ext.registry import builtin_plugins
from tests.convert.convert_helpers import REPO, read_st_dir

PLUGINS = builtin_plugins(REPO / "research")
TINY = {
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 40,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "attention_bias": True,
}


def test_every_plugin_has_both_directions_and_distinct_names():
    assert {p.root.name for p in PLUGINS} >= {"llama3_1", "qwen2"}
    seen: dict[str, str] = {}
    for p in PLUGINS:
        assert callable(p.convert_pt_to_ms) and callable(p.convert_ms_to_pt), p.root
        assert p.model_names, p.root
        for n in p.model_names:
            assert n not in seen, f"{n!r} claimed by {seen.get(n)} and {p.root.name}"
            seen[n] = p.root.name


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.root.name)
@pytest.mark.parametrize("qkv_concat", [False, True])
@pytest.mark.parametrize("tied", [False, True])
def test_spec_round_trip_from_its_own_names(tmp_path, plugin, qkv_concat, tied):
    from safetensors.numpy import save_file

    from mf_ext.convert.engine import _steps

    spec = plugin.import_module("weight_map").SPEC
    cfg = dict(TINY, tie_word_embeddings=tied)
    dims = spec.dims(cfg)
    flags = {**spec.flags(cfg), "qkv_concat": False}
    rng = np.random.default_rng(0)
    tensors = {}
    for step in _steps(spec.rules, dims, flags, "hf_to_ms"):
        if step.kind != "drop":
            for name, shape in zip(step.sources, step.source_shapes, strict=True):
                tensors[name] = rng.standard_normal(shape).astype(np.float32)
    src = tmp_path / "hf"
    src.mkdir()
    save_file(tensors, str(src / "model.safetensors"), metadata={"format": "pt"})
    (src / "config.json").write_text(json.dumps(cfg))
    plugin.convert_pt_to_ms(src, tmp_path / "w.ckpt", qkv_concat=qkv_concat, progress=False)
    plugin.convert_ms_to_pt(tmp_path / "w.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(src) == read_st_dir(tmp_path / "back")
