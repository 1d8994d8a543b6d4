"""HF -> MS -> HF is bit-exact: every tensor's name, dtype, shape and bytes survive, for every combination of
dtype, sharding, qkv_concat, tied embeddings, output container and family; plus random shapes (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.convert.convert_helpers import hf_names, listing, plugin, read_st_dir, synth_hf


def _roundtrip(tmp_path, src, family, fmt, qkv_concat, **kw):
    p = plugin(family)
    mid = tmp_path / ("ms.ckpt" if fmt == "ckpt" else "ms_st")
    back = tmp_path / "hf_back"
    p.convert_pt_to_ms(src, mid, format=fmt, qkv_concat=qkv_concat, progress=False, **kw)
    p.convert_ms_to_pt(mid, back, progress=False)
    return mid, back


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("qkv_concat", [False, True])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_roundtrip_bit_exact(tmp_path, family, dtype, shards, qkv_concat, tied, fmt):
    src = synth_hf(tmp_path / "hf", family=family, dtype=dtype, shards=shards, tied=tied, seed=shards)
    mid, back = _roundtrip(tmp_path, src, family, fmt, qkv_concat)
    a, b = read_st_dir(src), read_st_dir(back)
    assert sorted(a) == sorted(b) == sorted(hf_names(family, 2, tied))
    for name in a:
        assert a[name] == b[name], name
    cfg = json.loads((back / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is tied and cfg["torch_dtype"] == dtype
    assert (back / "generation_config.json").is_file() and (back / "model.safetensors.index.json").is_file()
    # fused names really were fused in the middle, and nothing temporary is left anywhere
    if fmt == "safetensors":
        mid_names = set(read_st_dir(mid))
        assert any(".w_qkv." in n for n in mid_names) is qkv_concat
        assert ("lm_head.weight" in mid_names) is (not tied)
    assert not [n for n in listing(tmp_path) if ".tmp-" in n or ".old-" in n]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    family=st.sampled_from(["llama", "qwen2"]),
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
    layers=st.integers(1, 3),
    kv_heads=st.sampled_from([1, 2, 4]),
    rep=st.sampled_from([1, 2, 3]),
    head_dim=st.sampled_from([2, 4, 8, 6]),
    inter=st.integers(1, 40),
    vocab=st.integers(1, 50),
    qkv_concat=st.booleans(),
    tied=st.booleans(),
    fmt=st.sampled_from(["ckpt", "safetensors"]),
)
def test_roundtrip_random_shapes(
    tmp_path_factory, data, family, dtype, layers, kv_heads, rep, head_dim, inter, vocab, qkv_concat, tied, fmt
):
    tmp_path = tmp_path_factory.mktemp("rt")
    heads = kv_heads * rep
    hidden = data.draw(st.sampled_from([heads * head_dim, 8, 24]))
    shards = data.draw(st.integers(1, 4))
    src = synth_hf(
        tmp_path / "hf",
        family=family,
        dtype=dtype,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        inter=inter,
        vocab=vocab,
        tied=tied,
        shards=shards,
    )
    _, back = _roundtrip(tmp_path, src, family, fmt, qkv_concat)
    assert read_st_dir(src) == read_st_dir(back)


def test_qkv_layout_is_grouped_per_kv_head(tmp_path):
    """The fused rows are [q heads of group g, k_g, v_g] per KV group and gate/up rows alternate -- checked on
    values, against an independent numpy construction (not the engine's own code)."""
    import numpy as np
    from safetensors.numpy import load_file

    src = synth_hf(tmp_path / "hf", dtype="float32", hidden=24, heads=6, kv_heads=2, head_dim=4, inter=5)
    plugin("llama").convert_pt_to_ms(src, tmp_path / "st", format="safetensors", qkv_concat=True, progress=False)
    hf = load_file(src / "model.safetensors")
    ms = {}
    for f in (tmp_path / "st").glob("*.safetensors"):
        ms.update(load_file(f))
    q, k, v = (hf[f"model.layers.1.self_attn.{x}_proj.weight"] for x in "qkv")
    rows = []
    for g in range(2):
        rows += [q[(g * 3 + h) * 4 : (g * 3 + h + 1) * 4] for h in range(3)]
        rows += [k[g * 4 : (g + 1) * 4], v[g * 4 : (g + 1) * 4]]
    np.testing.assert_array_equal(ms["model.layers.1.attention.w_qkv.weight"], np.concatenate(rows))
    gate, up = hf["model.layers.1.mlp.gate_proj.weight"], hf["model.layers.1.mlp.up_proj.weight"]
    fused = ms["model.layers.1.feed_forward.w_gate_hidden.weight"]
    np.testing.assert_array_equal(fused[0::2], gate)
    np.testing.assert_array_equal(fused[1::2], up)


def test_dtype_cast_matches_torch(tmp_path):
    """--dtype casts give exactly torch's bits (round-to-nearest-even for bf16), both directions."""
    import torch
    from safetensors.torch import load_file

    src = synth_hf(tmp_path / "hf", dtype="float32")
    p = plugin("llama")
    p.convert_pt_to_ms(src, tmp_path / "st16", format="safetensors", dtype="bf16", progress=False)
    p.convert_ms_to_pt(tmp_path / "st16", tmp_path / "back32", dtype="float32", progress=False)
    p.convert_pt_to_ms(src, tmp_path / "h.ckpt", dtype="fp16", progress=False)
    p.convert_ms_to_pt(tmp_path / "h.ckpt", tmp_path / "backh", progress=False)
    ref = load_file(src / "model.safetensors")
    back32 = read_st_dir(tmp_path / "back32")
    backh = read_st_dir(tmp_path / "backh")
    for n, t in ref.items():
        want32 = t.to(torch.bfloat16).to(torch.float32).view(torch.uint8).numpy().tobytes()
        assert back32[n][2] == want32, n
        assert backh[n][2] == t.to(torch.float16).view(torch.uint8).numpy().tobytes(), n


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_chunked_paths_bit_exact(tmp_path, monkeypatch, fmt):
    """Tiny chunk and ckpt-slice sizes force the streamed fuse/split/cast and multi-value ckpt code paths that
    real-size models take; results must not change."""
    import torch
    from safetensors.torch import load_file

    from mf_ext.convert import engine, writers

    monkeypatch.setattr(engine, "_CHUNK_BYTES", 100)
    monkeypatch.setattr(writers, "CKPT_SLICE_BYTES", 1000)
    src = synth_hf(tmp_path / "hf", dtype="float32", shards=2)
    mid = tmp_path / ("m.ckpt" if fmt == "ckpt" else "m")
    p = plugin("llama")
    p.convert_pt_to_ms(src, mid, "bf16", format=fmt, qkv_concat=True, progress=False)
    p.convert_ms_to_pt(mid, tmp_path / "back", "float32", progress=False)
    back = read_st_dir(tmp_path / "back")
    ref = {}
    for f in src.glob("*.safetensors"):
        ref.update(load_file(f))
    for n, t in ref.items():
        assert back[n][2] == t.to(torch.bfloat16).to(torch.float32).view(torch.uint8).numpy().tobytes(), n
    if fmt == "ckpt":
        import mindspore as ms

        loaded = ms.load_checkpoint(str(mid))  # several values per tag, as MindSpore writes huge tensors
        w = loaded["model.layers.0.feed_forward.w_gate_hidden.weight"]
        assert tuple(w.shape) == (96, 32) and w.dtype == ms.bfloat16


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_tied_checkpoint_that_still_stores_lm_head(tmp_path, family):
    """Some tied checkpoints store lm_head.weight anyway: it is dropped only if it equals the embedding."""
    from safetensors.torch import load_file, save_file

    from mf_ext.convert import ConversionError

    src = synth_hf(tmp_path / "hf", family=family, tied=True)
    t = load_file(src / "model.safetensors")
    t["lm_head.weight"] = t["model.embed_tokens.weight"].clone()
    save_file(t, src / "model.safetensors", metadata={"format": "pt"})
    plan = plugin(family).convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False).plan
    assert "lm_head.weight" in plan.dropped and "lm_head.weight" not in {x.name for x in plan.targets}
    t["lm_head.weight"][0, 0] += 1
    save_file(t, src / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ConversionError, match="'lm_head.weight' differs from 'model.embed_tokens.weight'"):
        plugin(family).convert_pt_to_ms(src, tmp_path / "x.ckpt", progress=False)
    assert not (tmp_path / "x.ckpt").exists()


def test_training_checkpoint_state_is_skipped(tmp_path):
    """A MindSpore training checkpoint (optimizer moments, counters) converts back to the bare model."""
    ms = pytest.importorskip("mindspore")
    import numpy as np

    src = synth_hf(tmp_path / "hf")
    p = plugin("llama")
    p.convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    params = ms.load_checkpoint(str(tmp_path / "w.ckpt"))
    extra = {f"adam_m.{n}": v.asnumpy() * 0 for n, v in params.items()}
    extra.update({"global_step": np.array([7], np.int32), "scale_sense": np.array(1.0, np.float32)})
    items = [{"name": n, "data": v} for n, v in params.items()]
    items += [{"name": n, "data": ms.Tensor(v)} for n, v in extra.items()]
    ms.save_checkpoint(items, str(tmp_path / "train.ckpt"), append_dict={"note": "a string entry"})
    notes = []
    p.convert_ms_to_pt(
        tmp_path / "train.ckpt", tmp_path / "back", hf_config=src / "config.json", progress=False, print_fn=notes.append
    )
    assert read_st_dir(src) == read_st_dir(tmp_path / "back")
    assert any("skipped 24 optimizer/training-state tensors" in n for n in notes)


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_page_congruent_placement_stays_loadable(tmp_path, monkeypatch, fmt):
    """Copied tensors land at the source's offset modulo 4096 (header padding / a skipped protobuf field);
    MindSpore and safetensors still read every tensor unchanged."""
    ms = pytest.importorskip("mindspore")
    import numpy as np

    from mf_ext.convert import writers
    from mf_ext.convert.readers import open_source

    monkeypatch.setattr(writers, "ALIGN_MIN_BYTES", 0)
    src = synth_hf(tmp_path / "hf", dtype="float32", shards=3)
    mid = tmp_path / ("m.ckpt" if fmt == "ckpt" else "m")
    plugin("llama").convert_pt_to_ms(src, mid, format=fmt, progress=False)
    a, b = open_source(src), open_source(mid)
    rename = {"model.embed_tokens.weight": "model.tok_embeddings.embedding_weight"}
    for n, info in a.tensors.items():
        if n in rename:
            assert info.ranges[0][0] % 4096 == b.tensors[rename[n]].ranges[0][0] % 4096
    loaded = {}
    files = [mid] if fmt == "ckpt" else sorted(mid.glob("*.safetensors"))
    for f in files:
        loaded.update(ms.load_checkpoint(str(f), format=fmt))
    assert sorted(loaded) == sorted(b.tensors)
    for n in b.tensors:
        np.testing.assert_array_equal(loaded[n].asnumpy(), b.array(n))
    a.close()
    b.close()
    plugin("llama").convert_ms_to_pt(mid, tmp_path / "back", progress=False)
    assert read_st_dir(src) == read_st_dir(tmp_path / "back")
