"""Which HF checkpoints load in place (rename-only mapping of safetensors) and which go through the conversion cache;
the loaded values themselves are checked against HF logits in tests/test_launcher.py."""

from __future__ import annotations

import pytest

from mf_ext.convert.errors import ConversionError
from mf_ext.convert.inplace import plan_in_place
from mf_ext.registry import load_plugin
from tests.hf_fixtures import make_hf_llama
from tests.test_launcher import PLUGIN


@pytest.fixture(scope="module")
def spec():
    return load_plugin(PLUGIN).family.spec("hf")


def test_rename_only_mapping_loads_in_place(spec, tmp_path):
    hf = make_hf_llama(tmp_path / "hf", num_layers=2)
    weights = plan_in_place(spec, hf)
    assert weights is not None
    assert weights.names["model.tok_embeddings.embedding_weight"] == "model.embed_tokens.weight"
    assert weights.names["model.layers.1.attention.wk.weight"] == "model.layers.1.self_attn.k_proj.weight"
    assert len(weights.names) == 2 + 1 + 2 * 9  # embeddings, norm, lm_head + 9 tensors per layer
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.parent.name != "hf"]  # nothing written
    tied = plan_in_place(spec, make_hf_llama(tmp_path / "tied", num_layers=2, tie_word_embeddings=True))
    assert tied is not None and "lm_head.weight" not in tied.names  # HF saves a tied head once


def test_fused_mapping_dtype_and_bin_go_through_the_cache(spec, tmp_path):
    hf = make_hf_llama(tmp_path / "hf", num_layers=2)
    assert plan_in_place(spec, hf, qkv_concat=True) is None  # q/k/v fused: a conversion
    assert plan_in_place(spec, hf, dtype="bfloat16") is None  # an output dtype asked for
    pt = make_hf_llama(tmp_path / "bin", num_layers=2, safe_serialization=False)
    assert plan_in_place(spec, pt) is None  # pickled .bin: no memory map


def test_a_checkpoint_that_does_not_fit_is_refused_as_the_conversion_would(spec, tmp_path):
    hf = make_hf_llama(tmp_path / "hf", num_layers=2)
    cfg = (hf / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3')
    (hf / "config.json").write_text(cfg)
    with pytest.raises(ConversionError, match="missing tensors"):
        plan_in_place(spec, hf)
