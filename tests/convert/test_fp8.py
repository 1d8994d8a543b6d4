"""FP8 block dequantisation (DeepSeek-V3's released checkpoints: float8_e4m3fn ``*.weight`` with float32
``*.weight_scale_inv`` per 128x128 block), checked against torch's own float8_e4m3fn as the reference; one way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mf_ext.convert import ConversionError, hf_to_ms, ms_to_hf
from mf_ext.convert.dtypes import fp8_e4m3fn_to_f32
from mf_ext.convert.spec import Fp8BlockDequant, Rename, Spec, Stack

CFG = {"hidden_size": 200, "intermediate_size": 300, "n_routed_experts": 3, "vocab_size": 10, "num_hidden_layers": 1,
       "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}}  # fmt: skip
L = "model.layers.{L}.mlp."


def _dims(cfg):
    return {"layers": cfg["num_hidden_layers"], "hidden": cfg["hidden_size"], "inter": cfg["intermediate_size"],
            "experts": cfg["n_routed_experts"], "vocab": cfg["vocab_size"]}  # fmt: skip


FP8 = (Fp8BlockDequant(),)


def _spec(dequant=FP8) -> Spec:
    return Spec(
        "fp8-test",
        (
            Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
            Rename(L + "down_proj.weight", "model.layers.{L}.feed_forward.w2.weight", ("hidden", "inter")),
            Stack(L + "experts.{E}.up_proj.weight", "model.layers.{L}.feed_forward.ffn.w3.weight", ("inter", "hidden")),
        ),
        _dims,
        dequant=dequant,
    )


def _fp8(shape, gen) -> torch.Tensor:
    # finite fp8 values over the whole range (|x| <= 448), subnormals included
    return (torch.randn(shape, generator=gen) * 60).clamp(-448, 448).to(torch.float8_e4m3fn)


def _checkpoint(path, fmt: str = "safetensors", seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    h, i = CFG["hidden_size"], CFG["intermediate_size"]
    t = {"model.embed_tokens.weight": torch.randn(CFG["vocab_size"], h, generator=gen).to(torch.bfloat16)}
    weights = {L.replace("{L}", "0") + "down_proj.weight": (h, i)}
    weights |= {L.replace("{L}", "0") + f"experts.{e}.up_proj.weight": (i, h) for e in range(3)}
    for name, shape in weights.items():
        t[name] = _fp8(shape, gen)
        blocks = (-(-shape[0] // 128), -(-shape[1] // 128))
        t[name + "_scale_inv"] = torch.rand(blocks, generator=gen) * 1e-2 + 1e-4
    path.mkdir(parents=True)
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(t, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(t, path / "pytorch_model.bin")
    (path / "config.json").write_text(json.dumps(CFG))
    return t


def _reference(w: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """torch's float8_e4m3fn values times the scale of their 128x128 block, computed in float32."""
    s = scale.repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]
    return (w.to(torch.float32) * s).to(dtype)


def _load(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_decode_table_equals_torch_float8_e4m3fn():
    bits = np.arange(256, dtype=np.uint8)
    ours = fp8_e4m3fn_to_f32(bits)
    theirs = torch.from_numpy(bits).view(torch.float8_e4m3fn).to(torch.float32).numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)) and np.isnan(ours).sum() == 2  # 0x7F, 0xFF
    ok = ~np.isnan(theirs)
    assert np.array_equal(ours[ok].view(np.uint32), theirs[ok].view(np.uint32))  # -0.0 and subnormals too
    assert ours[ok].max() == 448


@pytest.mark.parametrize(("fmt", "dtype"), [("safetensors", None), ("safetensors", "float32"), ("bin", "bfloat16")])
def test_block_dequant_equals_torch(tmp_path, fmt, dtype):
    t = _checkpoint(tmp_path / "hf", fmt)
    notes: list[str] = []
    res = hf_to_ms(_spec(), tmp_path / "hf", tmp_path / "ms", dtype, format="safetensors", progress=False,
                   print_fn=notes.append)  # fmt: skip
    assert any("dequantised 4 float8_e4m3fn weights" in n for n in notes)
    want = torch.float32 if dtype == "float32" else torch.bfloat16  # bf16 by default, as DeepSeek's fp8_cast_bf16
    ms = _load(tmp_path / "ms")
    down = "model.layers.0.mlp.down_proj.weight"
    ref = _reference(t[down], t[down + "_scale_inv"], want)
    assert ms["model.layers.0.feed_forward.w2.weight"].dtype == want
    assert torch.equal(ms["model.layers.0.feed_forward.w2.weight"].view(torch.uint8), ref.view(torch.uint8))
    ups = [
        _reference(t[f"model.layers.0.mlp.experts.{e}.up_proj.weight"],
                   t[f"model.layers.0.mlp.experts.{e}.up_proj.weight_scale_inv"], want)
        for e in range(3)
    ]  # fmt: skip
    assert torch.equal(ms["model.layers.0.feed_forward.ffn.w3.weight"].view(torch.uint8),
                       torch.stack(ups).view(torch.uint8))  # fmt: skip
    emb = ms["model.tok_embeddings.embedding_weight"]
    assert torch.equal(emb.view(torch.uint8), t["model.embed_tokens.weight"].to(want).view(torch.uint8))
    assert "quantization_config" not in json.loads((tmp_path / "ms" / "config.json").read_text())
    assert len(res.plan.dequantised) == 4


def test_a_wrong_block_size_fails_the_reference(tmp_path):
    t = _checkpoint(tmp_path / "hf")
    down = "model.layers.0.mlp.down_proj.weight"
    # 100x100 blocks give the same scale shapes for these weights ((200, 300) -> (2, 3)): only the values differ
    hf_to_ms(_spec((Fp8BlockDequant(block=(100, 100)),)), tmp_path / "hf", tmp_path / "ms", format="safetensors",
             progress=False)  # fmt: skip
    ref = _reference(t[down], t[down + "_scale_inv"], torch.bfloat16)
    assert not torch.equal(_load(tmp_path / "ms")["model.layers.0.feed_forward.w2.weight"], ref)
    with pytest.raises(ConversionError, match=r"'model.layers.0.mlp.down_proj.weight_scale_inv' has shape \[2, 3\] "
                                              r"float32, but the scales of .* in 64x256 blocks need \[4, 2\]"):  # fmt: skip
        hf_to_ms(_spec((Fp8BlockDequant(block=(64, 256)),)), tmp_path / "hf", tmp_path / "x", progress=False)


def test_dry_run_describes_the_dequant(tmp_path):
    _checkpoint(tmp_path / "hf")
    lines: list[str] = []
    plan = hf_to_ms(_spec(), tmp_path / "hf", tmp_path / "w.ckpt", dry_run=True, print_fn=lines.append)
    assert "dequant: 4 float8_e4m3fn weights with their block scales" in lines[0]
    assert {t.dtype for t in plan.targets} == {"bfloat16"}
    assert not (tmp_path / "w.ckpt").exists()


def test_back_to_hf_is_one_way(tmp_path):
    t = _checkpoint(tmp_path / "hf")
    hf_to_ms(_spec(), tmp_path / "hf", tmp_path / "w.ckpt", progress=False)
    with pytest.raises(ConversionError, match="ms_to_hf cannot write float8_e4m3fn: FP8 block quantisation is one-way"):
        ms_to_hf(_spec(), tmp_path / "w.ckpt", tmp_path / "back", "fp8", progress=False)
    notes: list[str] = []
    # the original config (with its fp8 quantization_config) given explicitly: dropped from the output, said so
    ms_to_hf(_spec(), tmp_path / "w.ckpt", tmp_path / "back", hf_config=tmp_path / "hf" / "config.json",
             progress=False, print_fn=notes.append)  # fmt: skip
    assert any("FP8 block dequantisation is one-way" in n for n in notes)
    cfg = json.loads((tmp_path / "back" / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["torch_dtype"] == "bfloat16"
    back = _load(tmp_path / "back")
    assert not any(k.endswith("_scale_inv") for k in back)
    down = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(back[down], _reference(t[down], t[down + "_scale_inv"], torch.bfloat16))
    with pytest.raises(ConversionError, match="hf_to_ms cannot write float8_e4m3fn"):
        hf_to_ms(_spec(), tmp_path / "hf", tmp_path / "x.ckpt", "fp8", progress=False)


def test_fp8_input_errors(tmp_path):
    t = _checkpoint(tmp_path / "hf")
    from safetensors.torch import save_file

    no_scale = {k: v for k, v in t.items() if k != "model.layers.0.mlp.down_proj.weight_scale_inv"}
    (tmp_path / "a").mkdir()
    save_file(no_scale, str(tmp_path / "a" / "model.safetensors"))
    (tmp_path / "a" / "config.json").write_text(json.dumps(CFG))
    with pytest.raises(ConversionError, match=r"'model.layers.0.mlp.down_proj.weight' is float8_e4m3fn but "
                                              r"'model.layers.0.mlp.down_proj.weight_scale_inv' .* is not in"):  # fmt: skip
        hf_to_ms(_spec(), tmp_path / "a", tmp_path / "a.ckpt", progress=False)
    with pytest.raises(ConversionError, match=r"is float8_e4m3fn and the 'fp8-test' spec declares no FP8 dequant"):
        hf_to_ms(_spec(()), tmp_path / "hf", tmp_path / "b.ckpt", progress=False)
    with pytest.raises(ConversionError, match="unknown dequant op 'str'"):
        Spec("x", (), _dims, dequant=("fp8",))
    assert not list(tmp_path.glob("*.ckpt"))
