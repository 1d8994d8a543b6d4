"""Real-size shape arithmetic at no cost: header-only (sparse) safetensors of Llama-3.1-8B and Qwen2-7B are
planned from their headers -- every name and shape, fused shapes, dtypes and the memory estimate -- without
moving a byte (``--dry-run``)."""

from __future__ import annotations

import json
import struct

import pytest

from mf_ext.convert.cli import main
from tests.convert.convert_helpers import hf_shapes, plugin

LLAMA31_8B = dict(
    family="llama", layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, inter=14336, vocab=128256, tied=False
)
QWEN2_7B = dict(
    family="qwen2", layers=28, hidden=3584, heads=28, kv_heads=4, head_dim=128, inter=18944, vocab=152064, tied=False
)


def _sparse_hf(path, spec, shards=4):
    """HF-layout safetensors whose data regions are holes (sparse files): headers are real, bytes are not."""
    shapes = hf_shapes(**spec)
    names = list(shapes)
    path.mkdir()
    per = -(-len(names) // shards)
    weight_map = {}
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        header, pos = {"__metadata__": {"format": "pt"}}, 0
        for n in names[k * per : (k + 1) * per]:
            nb = 2
            for d in shapes[n]:
                nb *= d
            header[n] = {"dtype": "BF16", "shape": list(shapes[n]), "data_offsets": [pos, pos + nb]}
            pos += nb
            weight_map[n] = fname
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(path / fname, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + pos)
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    cfg = {
        "hidden_size": spec["hidden"],
        "intermediate_size": spec["inter"],
        "num_hidden_layers": spec["layers"],
        "num_attention_heads": spec["heads"],
        "num_key_value_heads": spec["kv_heads"],
        "vocab_size": spec["vocab"],
        "tie_word_embeddings": spec["tied"],
    }
    (path / "config.json").write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("spec", [LLAMA31_8B, QWEN2_7B], ids=["llama3.1-8b", "qwen2-7b"])
def test_plan_real_size_from_headers(tmp_path, spec):
    src = _sparse_hf(tmp_path / "hf", spec)
    h, q, kv, inter = spec["hidden"], spec["heads"] * 128, spec["kv_heads"] * 128, spec["inter"]
    plan = plugin(spec["family"]).convert_pt_to_ms(
        src, tmp_path / "w.ckpt", qkv_concat=True, dry_run=True, print_fn=lambda *a: None
    )
    shapes = {t.name: t.shape for t in plan.targets}
    bias = spec["family"] == "qwen2"
    assert len(shapes) == spec["layers"] * (6 + bias) + 3
    assert shapes[
        "model.layers.31.attention.w_qkv.weight" if spec["layers"] > 31 else "model.layers.27.attention.w_qkv.weight"
    ] == (q + 2 * kv, h)
    assert shapes["model.layers.0.feed_forward.w_gate_hidden.weight"] == (2 * inter, h)
    assert shapes["model.tok_embeddings.embedding_weight"] == (spec["vocab"], h)
    if bias:
        assert shapes["model.layers.0.attention.w_qkv.bias"] == (q + 2 * kv,)
    assert {t.dtype for t in plan.targets} == {"bfloat16"}
    assert plan.total_bytes == sum(
        2 * a * (b if len(s) > 1 else 1) for s in shapes.values() for a, b in [(s[0], s[-1])]
    )
    assert plan.peak_estimate <= 256 * 2**20  # streamed: independent of the 15 GB model
    assert not (tmp_path / "w.ckpt").exists()


def test_dry_run_cli_on_8b_prints_plan(tmp_path, capsys):
    src = _sparse_hf(tmp_path / "hf", LLAMA31_8B)
    assert (
        main(
            [
                "hf_to_ms",
                "--model",
                "llama3_1",
                "--input_path",
                str(src),
                "--output_path",
                str(tmp_path / "w"),
                "--format",
                "safetensors",
                "--dry-run",
                "--max_shard_size",
                "5GB",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "16.06 GB to write" in out
    assert "model.layers.31.attention.wk.weight [1024, 4096]" in out
    assert "model-00004-of-00004.safetensors" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]
