"""Other source formats reach the same MindSpore checkpoint: HF ``pytorch_model.bin`` and Meta's
``consolidated.NN.pth`` + ``params.json`` (model-parallel shards, interleaved rotary layout) -- the Meta case also
checked against the HF release of the same weights (itself checked against MindFormers' converter)."""

from __future__ import annotations

import json

import torch

from mf_ext.convert.readers import CkptReader
from tests.convert.convert_helpers import plugin
from tests.hf_fixtures import make_hf_llama


def _ckpt(path) -> dict[str, tuple[str, tuple, bytes]]:
    r = CkptReader(path)
    out = {n: (i.dtype, i.shape, r.array(n).tobytes()) for n, i in r.tensors.items()}
    r.close()
    return out


def test_bin_equals_safetensors(tmp_path):
    a = make_hf_llama(tmp_path / "st", dtype="bfloat16")
    b = make_hf_llama(tmp_path / "bin", dtype="bfloat16", safe_serialization=False)
    assert list(b.glob("pytorch_model*.bin")) and not list(b.glob("*.safetensors"))
    plugin("llama").convert_pt_to_ms(a, tmp_path / "a.ckpt", progress=False)
    plugin("llama").convert_pt_to_ms(b, tmp_path / "b.ckpt", progress=False)
    assert _ckpt(tmp_path / "a.ckpt") == _ckpt(tmp_path / "b.ckpt")


def _to_meta(hf_dir, out, n_heads, n_kv, shards=2):
    """Write an HF Llama as Meta's release: HF->Meta rotary layout per head, split over `shards` like Meta's
    model-parallel files (column-parallel on dim 0, row-parallel/embeddings on dim 1)."""
    from safetensors.torch import load_file

    cfg = json.loads((hf_dir / "config.json").read_text())
    sd = load_file(hf_dir / "model.safetensors")
    dim = cfg["hidden_size"]

    def to_meta_rope(w, heads):  # inverse of the permutation HF's conversion script applies
        return w.view(heads, 2, w.shape[0] // heads // 2, dim).transpose(1, 2).reshape(w.shape[0], dim)

    meta = {
        "tok_embeddings.weight": sd["model.embed_tokens.weight"],
        "norm.weight": sd["model.norm.weight"],
        "output.weight": sd["lm_head.weight"],
        "rope.freqs": torch.ones(dim // n_heads // 2),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        meta[f"layers.{i}.attention.wq.weight"] = to_meta_rope(sd[p + "self_attn.q_proj.weight"], n_heads)
        meta[f"layers.{i}.attention.wk.weight"] = to_meta_rope(sd[p + "self_attn.k_proj.weight"], n_kv)
        meta[f"layers.{i}.attention.wv.weight"] = sd[p + "self_attn.v_proj.weight"]
        meta[f"layers.{i}.attention.wo.weight"] = sd[p + "self_attn.o_proj.weight"]
        meta[f"layers.{i}.feed_forward.w1.weight"] = sd[p + "mlp.gate_proj.weight"]
        meta[f"layers.{i}.feed_forward.w2.weight"] = sd[p + "mlp.down_proj.weight"]
        meta[f"layers.{i}.feed_forward.w3.weight"] = sd[p + "mlp.up_proj.weight"]
        meta[f"layers.{i}.attention_norm.weight"] = sd[p + "input_layernorm.weight"]
        meta[f"layers.{i}.ffn_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
    axis = {"tok_embeddings": 1, "output": 0, "wq": 0, "wk": 0, "wv": 0, "wo": 1, "w1": 0, "w2": 1, "w3": 0}
    out.mkdir()
    for k in range(shards):
        part = {}
        for n, t in meta.items():
            ax = axis.get(n.split(".")[-2] if n.count(".") >= 1 else n)
            part[n] = t.clone() if ax is None else t.chunk(shards, dim=ax)[k].clone()
        torch.save(part, out / f"consolidated.{k:02d}.pth")
    (out / "params.json").write_text(
        json.dumps(
            {
                "dim": dim,
                "n_layers": cfg["num_hidden_layers"],
                "n_heads": n_heads,
                "n_kv_heads": n_kv,
                "vocab_size": -1,
                "multiple_of": 32,
                "norm_eps": cfg["rms_norm_eps"],
                "rope_theta": cfg["rope_theta"],
            }
        )
    )
    return out


def test_meta_consolidated_equals_hf(tmp_path):
    # (MindFormers 1.9.0's own convert_meta_torch_ckpt cannot serve as a reference: it calls torch's .view on a
    # numpy array and raises TypeError, and it would name the embedding 'model.tok_embeddings.weight')
    hf = make_hf_llama(tmp_path / "hf", num_heads=4, num_kv_heads=4)
    meta = _to_meta(hf, tmp_path / "meta", n_heads=4, n_kv=4)
    plugin("llama").convert_pt_to_ms(hf, tmp_path / "from_hf.ckpt", progress=False)
    plugin("llama").convert_pt_to_ms(meta, tmp_path / "from_meta.ckpt", progress=False)
    assert _ckpt(tmp_path / "from_hf.ckpt") == _ckpt(tmp_path / "from_meta.ckpt")
    derived = json.loads((tmp_path / "from_meta.ckpt.config.json").read_text())
    assert derived["vocab_size"] == 256 and derived["intermediate_size"] == 160
    assert derived["num_key_value_heads"] == 4


def test_meta_gqa_rope_permutation(tmp_path):
    """GQA: wk is permuted per KV head (MindFormers' Meta converter cannot do this one)."""
    hf = make_hf_llama(tmp_path / "hf", num_heads=4, num_kv_heads=2)
    meta = _to_meta(hf, tmp_path / "meta", n_heads=4, n_kv=2)
    plugin("llama").convert_pt_to_ms(hf, tmp_path / "a.ckpt", progress=False)
    plugin("llama").convert_pt_to_ms(meta, tmp_path / "b.ckpt", progress=False)
    assert _ckpt(tmp_path / "a.ckpt") == _ckpt(tmp_path / "b.ckpt")


def test_legacy_non_zip_bin_is_read(tmp_path):
    """Pre-1.6 torch files cannot be memory-mapped; they are still read (weights_only=True)."""
    from safetensors.torch import load_file

    src = make_hf_llama(tmp_path / "hf")
    sd = load_file(src / "model.safetensors")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(sd, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (legacy / "config.json").write_text((src / "config.json").read_text())
    plugin("llama").convert_pt_to_ms(src, tmp_path / "a.ckpt", progress=False)
    plugin("llama").convert_pt_to_ms(legacy, tmp_path / "b.ckpt", progress=False)
    assert _ckpt(tmp_path / "a.ckpt") == _ckpt(tmp_path / "b.ckpt")
