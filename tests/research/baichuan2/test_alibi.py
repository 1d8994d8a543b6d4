"""Baichuan2-13B (ALiBi + NormHead) against a torch implementation of its formulas written here.

transformers has no exact native twin of Baichuan2-13B: its ALiBi models (BLOOM, Falcon, MPT) share the slopes but
not the block (LayerNorm, GELU, fused per-head qkv). So the reference is :class:`Baichuan13B` below, written from
``modeling_baichuan.py`` of https://huggingface.co/baichuan-inc/Baichuan2-13B-Base: ``_get_interleave`` (slopes),
``_gen_alibi_mask`` (eval-mode mask: ``-inf`` above the diagonal plus ``slope_h * j`` for key position ``j``),
``BaichuanAttention`` (``W_pack`` rows ``[q; k; v]``, scores ``q k^T / sqrt(head_dim) + mask`` clamped at
``finfo.min``, softmax, ``o_proj``), ``RMSNorm``, ``MLP`` (``down(silu(gate) * up)``), ``BaichuanModel``
(``embed_tokens``, layers, ``norm``) and ``NormHead`` (``F.linear(h, F.normalize(weight))``). Its random weights are
drawn directly in Baichuan2's layout (the NormHead's raw rows at random scales) and written as the checkpoint the
plug-in's converter reads; 6 heads (not a power of two) take the slopes' interleave branch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.family_parity import GREEDY_TOKENS, PROMPT_LEN, load_family_model

REPO = Path(__file__).resolve().parents[3]
PLUGIN_DIR = REPO / "research" / "baichuan2"
CFG = {"vocab_size": 256, "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
       "num_attention_heads": 6, "rms_norm_eps": 1e-6, "model_max_length": 256}  # fmt: skip


def get_interleave(n: int) -> list[float]:
    """Baichuan2-13B's ``_get_interleave``: ALiBi slopes for ``n`` heads."""

    def power_of_2(m: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(m) - 3)))
        return [start * start**i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + get_interleave(2 * closest)[0::2][: n - closest]


class Baichuan13B:
    """Baichuan2-13B's forward (eval mode, no cache) on a dict of torch tensors in the checkpoint's layout."""

    def __init__(self, w: dict, cfg: dict):
        self.w, self.cfg = w, cfg

    def _rms(self, x, weight):
        import torch

        var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(var + self.cfg["rms_norm_eps"]))

    def _mask(self, n_head: int, seq: int):
        import torch

        slopes = torch.tensor(get_interleave(n_head))
        max_pos = self.cfg["model_max_length"]
        point = torch.arange(max_pos) - max_pos + 1
        point = point.unsqueeze(0).unsqueeze(0).expand(n_head, -1, -1)
        diag = torch.diag(point[0])
        point = point - diag.unsqueeze(0).unsqueeze(0).transpose(-1, -2)
        alibi = (slopes.unsqueeze(1).unsqueeze(1) * point).view(n_head, 1, max_pos)
        future = torch.triu(torch.full((max_pos, max_pos), float("-inf")), 1)
        return (future.unsqueeze(0) + alibi)[:n_head, :seq, :seq]

    def logits(self, ids):
        import torch

        w, c = self.w, self.cfg
        hidden, heads = c["hidden_size"], c["num_attention_heads"]
        d = hidden // heads
        bsz, seq = ids.shape
        h = w["model.embed_tokens.weight"][ids]
        mask = self._mask(heads, seq)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            x = self._rms(h, w[p + "input_layernorm.weight"])
            proj = x @ w[p + "self_attn.W_pack.weight"].T
            proj = proj.unflatten(-1, (3, hidden)).unsqueeze(0).transpose(0, -2).squeeze(-2)
            q, k, v = (proj[j].view(bsz, seq, heads, d).transpose(1, 2) for j in range(3))
            scores = q @ k.transpose(2, 3) / math.sqrt(d) + mask
            scores = torch.max(scores, torch.tensor(torch.finfo(scores.dtype).min))
            out = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(bsz, seq, hidden)
            h = h + out @ w[p + "self_attn.o_proj.weight"].T
            x = self._rms(h, w[p + "post_attention_layernorm.weight"])
            gate = torch.nn.functional.silu(x @ w[p + "mlp.gate_proj.weight"].T)
            h = h + (gate * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        h = self._rms(h, w["model.norm.weight"])
        return torch.nn.functional.linear(h, torch.nn.functional.normalize(w["lm_head.weight"]))


def _weights(cfg: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def n(*shape, std=0.08):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = {
        "model.embed_tokens.weight": n(vocab, hidden, std=1.0),
        "model.norm.weight": 1 + n(hidden, std=0.1),
        "lm_head.weight": n(vocab, hidden) * rng.uniform(0.5, 3.0, (vocab, 1)).astype(np.float32),  # raw NormHead
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.W_pack.weight"] = n(3 * hidden, hidden, std=0.3)
        w[p + "self_attn.o_proj.weight"] = n(hidden, hidden)
        w[p + "mlp.gate_proj.weight"] = n(inter, hidden)
        w[p + "mlp.up_proj.weight"] = n(inter, hidden)
        w[p + "mlp.down_proj.weight"] = n(hidden, inter)
        w[p + "input_layernorm.weight"] = 1 + n(hidden, std=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + n(hidden, std=0.1)
    return w


def test_13b_alibi_matches_baichuan_formulas(tmp_path, monkeypatch):
    import torch
    from safetensors.numpy import save_file

    import mf_ext
    from mf_ext.registry import load_plugin

    monkeypatch.chdir(tmp_path)
    plugin = load_plugin(str(PLUGIN_DIR))
    weights = _weights(CFG)
    src = tmp_path / "hf"
    src.mkdir()
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["BaichuanForCausalLM"], "model_type": "baichuan", "hidden_act": "silu",
              "position_embedding": "alibi", "z_loss_weight": 0, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
              "tie_word_embeddings": False, **CFG}  # fmt: skip
    (src / "config.json").write_text(json.dumps(config))
    plugin.convert_pt_to_ms(str(src), str(tmp_path / "model.ckpt"), progress=False)

    ref = Baichuan13B({k: torch.tensor(v) for k, v in weights.items()}, CFG)
    ids = np.random.RandomState(0).randint(0, CFG["vocab_size"], (1, PROMPT_LEN))
    with torch.no_grad():
        want = ref.logits(torch.tensor(ids)).numpy()
        seq, want_tokens = torch.tensor(ids), []
        for _ in range(GREEDY_TOKENS):
            want_tokens.append(int(ref.logits(seq)[0, -1].argmax()))
            seq = torch.cat([seq, torch.tensor([[want_tokens[-1]]])], dim=1)

    model = load_family_model(plugin, tmp_path / "model.ckpt", mode=1)
    assert model.spec.alibi and model.spec.rope is None and model.spec.lm_head_norm
    diff = float(np.abs(mf_ext.logits(model, ids).astype(np.float64) - want).max())
    assert diff <= 1e-4, f"max |delta logits| {diff:.3e}"
    assert len(set(want_tokens)) > 3, want_tokens  # a run that exercises the model, not one repeated token
    # with the KV cache (ALiBi distances from cache slots); the cache-free path is the logits check above
    out = np.asarray(mf_ext.generate(model, ids, GREEDY_TOKENS, do_sample=False, use_cache=True))
    assert [int(t) for t in out[0, PROMPT_LEN:]] == want_tokens


@pytest.mark.parametrize(
    ("cfg", "want"),
    [
        ({"hidden_size": 5120}, "alibi"),  # Baichuan2-13B's config.json: no position key, 5120 wide
        ({"hidden_size": 4096}, "rope"),  # Baichuan2-7B
        ({"hidden_size": 64, "position_embedding": "alibi"}, "alibi"),
        ({"hidden_size": 5120, "position_embedding": "rope"}, "rope"),
    ],
)
def test_position_embedding_from_config(cfg, want):
    from mf_ext.registry import load_plugin

    hf = load_plugin(str(PLUGIN_DIR)).import_module("hf_config")
    assert hf.position_embedding(cfg) == want


def test_bad_position_embedding_is_refused():
    from mf_ext.registry import load_plugin

    hf = load_plugin(str(PLUGIN_DIR)).import_module("hf_config")
    with pytest.raises(ValueError, match="position_embedding 'nope'"):
        hf.position_embedding({"hidden_size": 64, "position_embedding": "nope"})


@pytest.mark.parametrize("heads", [6, 8, 12, 40])
def test_slopes_equal_bloom_and_the_shared_block(heads):
    """Baichuan2-13B's slopes are BLOOM's (transformers' ``build_alibi_tensor``) and ``mf_ext.modules.alibi_slopes``;
    only the slopes are shared with BLOOM, not the block, so BLOOM is no twin for the whole model."""
    import torch
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    from mf_ext.modules import alibi_slopes

    bloom = build_alibi_tensor(torch.ones(1, 2), heads, torch.float32)[:, 0, 1].numpy()  # slope * position 1
    want = np.asarray(get_interleave(heads), dtype=np.float32)
    assert np.allclose(bloom, want, rtol=1e-6, atol=0) and np.allclose(alibi_slopes(heads), want, rtol=1e-6, atol=0)


def test_baichuan_v1_config_is_refused():
    from mf_ext.registry import load_plugin

    hf = load_plugin(str(PLUGIN_DIR)).import_module("hf_config")
    v1 = {"model_type": "baichuan", "hidden_size": 5120, "num_hidden_layers": 40, "num_attention_heads": 40,
          "vocab_size": 64000}  # fmt: skip
    with pytest.raises(ValueError, match="not a Baichuan2 checkpoint"):
        hf.to_model_config(v1)
    assert hf.to_model_config({**v1, "z_loss_weight": 0})["position_embedding"] == "alibi"
    assert hf.to_model_config({**v1, "vocab_size": 125696})["num_heads"] == 40
