"""The spec vocabulary beyond renames: Split (InternLM2's fused ``wqkv``), Regroup, Reshape/Chain, partial
RotaryPermute, declared options and unknown rules -- each checked against a reference built independently of our
layout code (the InternLM2 packing from its modeling code's description, HF transformers' rotary functions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mf_ext.convert import ConversionError, hf_to_ms, ms_to_hf
from mf_ext.convert.spec import (
    Chain,
    Concat,
    Option,
    QkvGroups,
    Regroup,
    Rename,
    Reshape,
    RotaryPermute,
    RowInterleave,
    Spec,
    Split,
    Transpose,
)

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, VOCAB, LAYERS = 16, 4, 2, 4, 24, 2
CFG = {
    "hidden_size": HIDDEN,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "vocab_size": VOCAB,
    "num_hidden_layers": LAYERS,
}


def _dims(cfg: dict) -> dict[str, int]:
    return {
        "layers": cfg["num_hidden_layers"],
        "hidden": cfg["hidden_size"],
        "heads": cfg["num_attention_heads"],
        "kv_heads": cfg["num_key_value_heads"],
        "head_dim": cfg["hidden_size"] // cfg["num_attention_heads"],
        "vocab": cfg["vocab_size"],
    }


def _save_hf(path, tensors: dict[str, np.ndarray], cfg: dict = CFG):
    from safetensors.numpy import save_file

    path.mkdir(parents=True)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def _load_dir(path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _bytes(d: dict[str, np.ndarray]) -> dict[str, tuple]:
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in d.items()}


# ---------------------------------------------------------------------------------------------- InternLM2 wqkv
IA = "model.layers.{L}.attention."
Q = ("heads*head_dim", "hidden")
KV = ("kv_heads*head_dim", "hidden")


def internlm2_wqkv(q: np.ndarray, k: np.ndarray, v: np.ndarray, kv_heads: int, head_dim: int) -> np.ndarray:
    """InternLM2's fused projection, built from its modeling code's description (modeling_internlm2.py,
    ``InternLM2Attention.forward``): ``qkv_states = rearrange(qkv_states, "b q (h gs d) -> b q h gs d",
    gs=2 + num_key_value_groups, d=head_dim)``; query = ``[..., :num_key_value_groups, :]``, key =
    ``[..., -2, :]``, value = ``[..., -1, :]``; query heads are then ``(h gs)``, i.e. head ``h*groups + g``."""
    hidden = q.shape[1]
    groups = q.shape[0] // head_dim // kv_heads
    w = np.empty((kv_heads, groups + 2, head_dim, hidden), dtype=q.dtype)
    for h in range(kv_heads):
        for g in range(groups):
            w[h, g] = q[(h * groups + g) * head_dim : (h * groups + g + 1) * head_dim]
        w[h, groups] = k[h * head_dim : (h + 1) * head_dim]
        w[h, groups + 1] = v[h * head_dim : (h + 1) * head_dim]
    return w.reshape(-1, hidden)


def _internlm2_spec(layout) -> Spec:
    return Spec(
        name="internlm2-test",
        rules=(
            Rename("model.tok_embeddings.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
            Split(IA + "wqkv.weight", (IA + "wq.weight", IA + "wk.weight", IA + "wv.weight"), (Q, KV, KV), layout),
            Rename(IA + "wo.weight", IA + "wo.weight", ("hidden", "heads*head_dim")),
        ),
        dims=_dims,
    )


def _internlm2_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    qkv = {}
    hf = {"model.tok_embeddings.weight": rng.standard_normal((VOCAB, HIDDEN), dtype=np.float32)}
    for i in range(LAYERS):
        q = rng.standard_normal((HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
        k = rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
        v = rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
        qkv[i] = (q, k, v)
        hf[f"model.layers.{i}.attention.wqkv.weight"] = internlm2_wqkv(q, k, v, KV_HEADS, HEAD_DIM)
        hf[f"model.layers.{i}.attention.wo.weight"] = rng.standard_normal((HIDDEN, HIDDEN), dtype=np.float32)
    return _save_hf(tmp_path / "hf", hf), qkv


def _split_matches_reference(tmp_path, layout) -> bool:
    """Convert with a Split of ``layout``; True if wq/wk/wv equal InternLM2's q/k/v exactly."""
    src, qkv = _internlm2_checkpoint(tmp_path)
    spec = _internlm2_spec(layout)
    hf_to_ms(spec, src, tmp_path / "ms", format="safetensors", progress=False)
    ms = _load_dir(tmp_path / "ms")
    ms_to_hf(spec, tmp_path / "ms", tmp_path / "back", progress=False)
    assert _bytes(_load_dir(tmp_path / "back")) == _bytes(_load_dir(src))  # a round trip holds either way
    return all(
        np.array_equal(ms[f"model.layers.{i}.attention.w{n}.weight"], t)
        for i, parts in qkv.items()
        for n, t in zip("qkv", parts, strict=True)
    )


def test_split_internlm2_wqkv_equals_its_layout(tmp_path):
    assert _split_matches_reference(tmp_path, QkvGroups("kv_heads"))


@pytest.mark.parametrize("wrong", [Concat(), QkvGroups("heads"), RowInterleave()], ids=["concat", "per-head", "rows"])
def test_wrong_internlm2_packing_fails_the_reference(tmp_path, wrong):
    if isinstance(wrong, RowInterleave):  # parts of different sizes cannot even interleave: refused at plan time
        with pytest.raises(ConversionError, match="RowInterleave needs parts of one shape"):
            _split_matches_reference(tmp_path, wrong)
        return
    assert not _split_matches_reference(tmp_path, wrong)


def test_split_reverse_packs_wq_wk_wv_into_wqkv(tmp_path):
    """ms->hf from separately written MindSpore tensors gives InternLM2's fused tensor, byte for byte."""
    import mindspore as ms

    rng = np.random.default_rng(1)
    q = rng.standard_normal((HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
    k = rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
    v = rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
    params = {"model.tok_embeddings.embedding_weight": rng.standard_normal((VOCAB, HIDDEN), dtype=np.float32)}
    for i in range(LAYERS):
        params |= {f"model.layers.{i}.attention.wq.weight": q, f"model.layers.{i}.attention.wk.weight": k,
                   f"model.layers.{i}.attention.wv.weight": v, f"model.layers.{i}.attention.wo.weight": q[:HIDDEN]}  # fmt: skip
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in params.items()], str(tmp_path / "w.ckpt"))
    ms_to_hf(_internlm2_spec(QkvGroups("kv_heads")), tmp_path / "w.ckpt", tmp_path / "hf", hf_config=CFG,
             progress=False)  # fmt: skip
    out = _load_dir(tmp_path / "hf")
    assert np.array_equal(out["model.layers.1.attention.wqkv.weight"], internlm2_wqkv(q, k, v, KV_HEADS, HEAD_DIM))


def test_regroup_fused_hf_to_differently_fused_ms(tmp_path):
    """N->M through named parts: InternLM2's wqkv -> (wq, w_kv with k/v rows alternating), and back."""
    src, qkv = _internlm2_checkpoint(tmp_path)
    spec = Spec(
        name="regroup-test",
        rules=(
            Rename("model.tok_embeddings.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
            Regroup(
                parts={"q": Q, "k": KV, "v": KV},
                hf={IA + "wqkv.weight": ("q", "k", "v")},
                ms={IA + "wq.weight": ("q",), IA + "w_kv.weight": ("k", "v")},
                hf_layout=QkvGroups("kv_heads"),
                ms_layout=RowInterleave(),
            ),
            Rename(IA + "wo.weight", IA + "wo.weight", ("hidden", "heads*head_dim")),
        ),
        dims=_dims,
    )
    plan = hf_to_ms(spec, src, tmp_path / "x", dry_run=True, print_fn=lambda *_: None)
    assert {s.kind for s in plan.steps} == {"copy", "regroup"}
    hf_to_ms(spec, src, tmp_path / "ms", format="safetensors", progress=False)
    ms = _load_dir(tmp_path / "ms")
    for i, (q, k, v) in qkv.items():
        assert np.array_equal(ms[f"model.layers.{i}.attention.wq.weight"], q)
        kv = ms[f"model.layers.{i}.attention.w_kv.weight"]
        for r in range(k.shape[0]):  # rows alternate k, v
            assert np.array_equal(kv[2 * r], k[r]) and np.array_equal(kv[2 * r + 1], v[r])
    ms_to_hf(spec, tmp_path / "ms", tmp_path / "back", progress=False)
    assert _bytes(_load_dir(tmp_path / "back")) == _bytes(_load_dir(src))


def test_regroup_must_place_every_part_once():
    bad = Regroup(parts={"a": ("x",), "b": ("x",)}, hf={"h": ("a", "b")}, ms={"m": ("a",)})
    with pytest.raises(ConversionError, match=r"rule 0 \(Regroup\): the ms tensors must hold each part of "
                                              r"\['a', 'b'\] once, got \['a'\]"):  # fmt: skip
        Spec("bad", (bad,), _dims)


# ---------------------------------------------------------------------------------------------- Reshape / Chain
def test_reshape_and_chain_ops_are_exact_and_invertible(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((HEADS * HEAD_DIM, HIDDEN), dtype=np.float32)
    b = rng.standard_normal((HIDDEN, 3 * HIDDEN), dtype=np.float32)
    src = _save_hf(tmp_path / "hf", {"a": a, "b": b})
    spec = Spec(
        "reshape-test",
        (
            Rename("a", "a3", ("heads*head_dim", "hidden"), op=Reshape(("heads", "head_dim", "hidden"))),
            Rename("b", "b_t", ("hidden", "3*hidden"), op=Chain((Transpose(), Reshape(("3", "hidden", "hidden"))))),
        ),
        _dims,
    )
    hf_to_ms(spec, src, tmp_path / "ms", format="safetensors", progress=False)
    ms = _load_dir(tmp_path / "ms")
    assert ms["a3"].shape == (HEADS, HEAD_DIM, HIDDEN) and np.array_equal(ms["a3"].reshape(-1), a.reshape(-1))
    assert ms["b_t"].shape == (3, HIDDEN, HIDDEN) and np.array_equal(ms["b_t"], b.T.copy().reshape(3, HIDDEN, HIDDEN))
    ms_to_hf(spec, tmp_path / "ms", tmp_path / "back", progress=False)
    assert _bytes(_load_dir(tmp_path / "back")) == _bytes({"a": a, "b": b})
    bad = Spec(
        "reshape-bad", (Rename("a", "a3", ("heads*head_dim", "hidden"), op=Reshape(("heads", "hidden"))),), _dims
    )
    with pytest.raises(ConversionError, match=r"Reshape\('heads', 'hidden'\): \[16, 16\] cannot become \[4, 16\]"):
        hf_to_ms(bad, _save_hf(tmp_path / "hf2", {"a": a}), tmp_path / "x.ckpt", dry_run=True, print_fn=print)


# ---------------------------------------------------------------------------------------------- partial rotary
def _rope_cos_sin(seq: int, rot: int):
    import torch

    inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)[None]  # (1, seq, rot): the layout HF's rotary embeddings return
    return emb.cos(), emb.sin()


def _heads(x, w, heads):  # (seq, hidden) @ (heads*hd, hidden)^T -> (1, heads, seq, hd)
    return (x @ w.T).reshape(1, x.shape[0], heads, -1).transpose(1, 2)


@pytest.mark.parametrize("rot", [HEAD_DIM * 2, HEAD_DIM])  # full head, and half of it (GLM's partial rotary)
def test_rotary_permute_partial_matches_glm_interleaved_rope(rot):
    """HF GLM rotates interleaved pairs of the first ``rot`` dims; after RotaryPermute(rot_dim=rot) the rotate-half
    rope (HF Llama's) on the same dims gives the same attention scores, and the pass-through dims are untouched."""
    import torch
    from transformers.models.glm.modeling_glm import apply_rotary_pos_emb as glm_rope
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as half_rope

    heads, hd, seq, hidden = 3, HEAD_DIM * 2, 5, 12
    dims = {"heads": heads}
    gen = torch.Generator().manual_seed(0)
    wq, wk = (torch.randn(heads * hd, hidden, generator=gen, dtype=torch.float64) for _ in range(2))
    x = torch.randn(seq, hidden, generator=gen, dtype=torch.float64)
    cos, sin = _rope_cos_sin(seq, rot)
    q_ref, k_ref = glm_rope(_heads(x, wq, heads), _heads(x, wk, heads), cos, sin)

    op = RotaryPermute("heads", rot_dim=rot)
    wq_ms, wk_ms = (torch.from_numpy(op.forward(w.numpy(), dims)) for w in (wq, wk))
    q, k = _heads(x, wq_ms, heads), _heads(x, wk_ms, heads)
    q_rot, k_rot = half_rope(q[..., :rot], k[..., :rot], cos, sin)
    q_ms, k_ms = torch.cat([q_rot, q[..., rot:]], -1), torch.cat([k_rot, k[..., rot:]], -1)
    torch.testing.assert_close(q_ms @ k_ms.transpose(-1, -2), q_ref @ k_ref.transpose(-1, -2), rtol=0, atol=1e-12)
    torch.testing.assert_close(q_ms[..., rot:], q_ref[..., rot:], rtol=0, atol=1e-12)
    # the identity (no permutation) would not do: the two ropes disagree on interleaved data
    q_id, k_id = half_rope(*(_heads(x, w, heads)[..., :rot] for w in (wq, wk)), cos, sin)
    assert not torch.allclose(q_id @ k_id.transpose(-1, -2), q_ref[..., :rot] @ k_ref[..., :rot].transpose(-1, -2))
    assert np.array_equal(op.inverse(op.forward(wq.numpy(), dims), dims, tuple(wq.shape)), wq.numpy())


def test_rotary_permute_offset_matches_deepseek_v3_interleaved_rope():
    """MLA heads are ``[no-rope dims, rope dims]``; HF DeepSeek-V3 de-interleaves the rope part at run time
    (``apply_rotary_pos_emb_interleave``). RotaryPermute(rot_dim, offset) does it once on the weight rows: the
    rotate-half rope on the permuted rows gives the very same q."""
    import torch
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import apply_rotary_pos_emb_interleave
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as half_rope

    heads, nope, rope, seq, hidden = 2, 6, 8, 4, 10
    dims = {"heads": heads, "nope": nope, "rope": rope}
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(heads * (nope + rope), hidden, generator=gen, dtype=torch.float64)
    x = torch.randn(seq, hidden, generator=gen, dtype=torch.float64)
    cos, sin = _rope_cos_sin(seq, rope)
    q = _heads(x, w, heads)
    pe_ref, _ = apply_rotary_pos_emb_interleave(q[..., nope:], q[..., nope:], cos, sin)

    op = RotaryPermute("heads", rot_dim="rope", offset="nope")
    q_ms = _heads(x, torch.from_numpy(op.forward(w.numpy(), dims)), heads)
    pe_ms, _ = half_rope(q_ms[..., nope:], q_ms[..., nope:], cos, sin)
    torch.testing.assert_close(pe_ms, pe_ref, rtol=0, atol=1e-12)  # the same q (matmul blocking aside)
    torch.testing.assert_close(q_ms[..., :nope], q[..., :nope], rtol=0, atol=1e-12)
    assert not torch.allclose(half_rope(q[..., nope:], q[..., nope:], cos, sin)[0], pe_ref)  # unpermuted: wrong
    with pytest.raises(ConversionError, match="rot_dim 8 from offset 7 does not fit a head of 14 rows"):
        RotaryPermute("heads", rot_dim="rope", offset=7).forward(w.numpy(), dims)


def test_rotary_permute_default_is_the_whole_head():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((HEADS * HEAD_DIM * 2, 5))
    dims = {"heads": HEADS, "hd": HEAD_DIM * 2}
    assert np.array_equal(RotaryPermute().forward(w, dims), RotaryPermute(rot_dim="hd", offset=0).forward(w, dims))


# ---------------------------------------------------------------------------------------------- options, unknown rules
def _plain_spec(**kw) -> Spec:
    return Spec("plain", (Rename("a", "b", ("hidden",)),), _dims, **kw)


def test_undeclared_option_is_refused_with_the_declared_ones(tmp_path):
    src = _save_hf(tmp_path / "hf", {"a": np.ones(HIDDEN, np.float32)})
    with pytest.raises(ConversionError, match=r"^option 'qkv_concat' is not supported by the 'plain' converter; "
                                              r"its options: none$"):  # fmt: skip
        hf_to_ms(_plain_spec(), src, tmp_path / "w.ckpt", qkv_concat=True, progress=False)
    declared = _plain_spec(options={"fused": Option(help="x"), "tied": Option()})
    with pytest.raises(ConversionError, match=r"option 'qkv_concat' .* its options: 'fused', 'tied'$"):
        hf_to_ms(declared, src, tmp_path / "w.ckpt", qkv_concat=True, progress=False)
    with pytest.raises(ConversionError, match=r"option 'bogus' is not supported"):
        hf_to_ms(declared, src, tmp_path / "w.ckpt", bogus=True, progress=False)
    assert not (tmp_path / "w.ckpt").exists()
    # not asked for (False / None): nothing to refuse
    assert hf_to_ms(_plain_spec(), src, tmp_path / "w.ckpt", qkv_concat=False, progress=False).plan.flags == {}
    with pytest.raises(ConversionError, match="option 'qkv_concat' is not supported"):
        ms_to_hf(_plain_spec(), tmp_path / "w.ckpt", tmp_path / "back", qkv_concat=True, progress=False)


def test_declared_option_default_and_detection(tmp_path):
    src = _save_hf(tmp_path / "hf", {"a": np.ones(HIDDEN, np.float32)})
    spec = Spec(
        "opt",
        (Rename("a", "b", ("hidden",), unless="wide"), Rename("a", "b_wide", ("hidden",), when="wide")),
        _dims,
        options={"wide": Option(default=True, detect=lambda names: any(n.endswith("_wide") for n in names))},
    )
    plan = hf_to_ms(spec, src, tmp_path / "w.ckpt", progress=False).plan
    assert plan.flags["wide"] is True and [t.name for t in plan.targets] == ["b_wide"]
    hf_to_ms(spec, src, tmp_path / "n.ckpt", wide=False, progress=False)
    for ckpt in ("w.ckpt", "n.ckpt"):  # ms->hf detects the option from the names, not from its default
        ms_to_hf(spec, tmp_path / ckpt, tmp_path / f"back_{ckpt}", progress=False)
        assert _bytes(_load_dir(tmp_path / f"back_{ckpt}")) == _bytes(_load_dir(src))


def test_meta_format_refuses_qkv_concat(tmp_path):
    from convert_helpers import plugin
    from hf_fixtures import make_hf_llama
    from test_formats import _to_meta

    hf = make_hf_llama(tmp_path / "hf", dtype="float32")
    meta = _to_meta(hf, tmp_path / "meta", n_heads=4, n_kv=4)
    with pytest.raises(ConversionError, match=r"option 'qkv_concat' is not supported by the 'llama' converter for "
                                              r"'meta' checkpoints; its options: none"):  # fmt: skip
        plugin("llama").convert_pt_to_ms(meta, tmp_path / "m.ckpt", qkv_concat=True, progress=False)


class Mystery:
    """Not a rule of the vocabulary."""

    hf = "a"
    ms = "b"
    when = unless = layers = None


def test_unknown_rule_type_raises_at_spec_and_plan_time():
    with pytest.raises(ConversionError, match=r"spec 'x': rule 1 is of unknown type 'Mystery'; known: Rename, Fuse"):
        Spec("x", (Rename("a", "b", ("hidden",)), Mystery()), _dims)
    from mf_ext.convert.engine import _steps

    with pytest.raises(ConversionError, match="rule 0 is of unknown type 'Mystery'"):
        _steps((Mystery(),), {"layers": 1}, {}, "hf_to_ms")
    with pytest.raises(ConversionError, match="op 'Concat' is not an Op"):
        Spec("x", (Rename("a", "b", ("hidden",), op=Concat()),), _dims)


def test_lora_on_a_split_cell_is_refused(tmp_path):
    """LoRA on wq of a fused HF wqkv is no single PEFT pair on wqkv: refused by name, not exported wrongly."""
    import mindspore as ms

    from mf_ext.convert.lora import lora_to_peft

    rng = np.random.default_rng(4)
    params = {"model.layers.0.attention.wq.lora_a": rng.standard_normal((2, HIDDEN), dtype=np.float32),
              "model.layers.0.attention.wq.lora_b": rng.standard_normal((HIDDEN, 2), dtype=np.float32)}  # fmt: skip
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in params.items()], str(tmp_path / "l.ckpt"))
    with pytest.raises(ConversionError, match="LoRA cell 'model.layers.0.attention.wq' comes from a Split rule"):
        lora_to_peft(_internlm2_spec(QkvGroups("kv_heads")), tmp_path / "l.ckpt", tmp_path / "peft", hf_config=CFG)
    assert not (tmp_path / "peft").exists()
