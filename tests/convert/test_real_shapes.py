"""Real-size shape arithmetic at no cost: header-only (sparse) safetensors of Llama-3.1-8B and Qwen2-7B are
planned from their headers -- every name and shape, fused shapes, dtypes and the memory estimate -- without
moving a byte (``--dry-run``)."""

from __future__ import annotations

import json
import struct

import numpy as np
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


# DeepSeek-V3 (671B) as released: config.json of deepseek-ai/DeepSeek-V3, FP8 linear weights with 128x128 block scales,
# the MTP module stored as layer 61. Names and shapes below are written from the released checkpoint's index, not
# from our spec.
DSV3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
    "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256, "routed_scaling_factor": 2.5,
    "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128,
    "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8, "first_k_dense_replace": 3, "norm_topk_prob": True,
    "num_nextn_predict_layers": 1, "topk_method": "noaux_tc", "scoring_func": "sigmoid", "vocab_size": 129280,
    "rms_norm_eps": 1e-6, "rope_theta": 10000, "max_position_embeddings": 163840, "tie_word_embeddings": False,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                     "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
}  # fmt: skip


def _dsv3_hf_tensors() -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) of the released DeepSeek-V3 checkpoint (163 shards' index, one layout)."""
    h, e, inter, moe = 7168, 256, 18432, 2048
    out: dict[str, tuple[str, tuple[int, ...]]] = {}

    def fp8(name, shape):
        out[name + ".weight"] = ("F8_E4M3", shape)
        out[name + ".weight_scale_inv"] = ("F32", (-(-shape[0] // 128), -(-shape[1] // 128)))

    def layer(i):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = ("BF16", (h,))
        out[p + "post_attention_layernorm.weight"] = ("BF16", (h,))
        fp8(p + "self_attn.q_a_proj", (1536, h))
        out[p + "self_attn.q_a_layernorm.weight"] = ("BF16", (1536,))
        fp8(p + "self_attn.q_b_proj", (128 * 192, 1536))
        fp8(p + "self_attn.kv_a_proj_with_mqa", (576, h))
        out[p + "self_attn.kv_a_layernorm.weight"] = ("BF16", (512,))
        fp8(p + "self_attn.kv_b_proj", (128 * 256, 512))
        fp8(p + "self_attn.o_proj", (h, 128 * 128))
        if i < 3:
            fp8(p + "mlp.gate_proj", (inter, h))
            fp8(p + "mlp.up_proj", (inter, h))
            fp8(p + "mlp.down_proj", (h, inter))
            return
        out[p + "mlp.gate.weight"] = ("BF16", (e, h))
        out[p + "mlp.gate.e_score_correction_bias"] = ("F32", (e,))
        for x in range(e):
            fp8(p + f"mlp.experts.{x}.gate_proj", (moe, h))
            fp8(p + f"mlp.experts.{x}.up_proj", (moe, h))
            fp8(p + f"mlp.experts.{x}.down_proj", (h, moe))
        fp8(p + "mlp.shared_experts.gate_proj", (moe, h))
        fp8(p + "mlp.shared_experts.up_proj", (moe, h))
        fp8(p + "mlp.shared_experts.down_proj", (h, moe))

    out["model.embed_tokens.weight"] = ("BF16", (129280, h))
    out["model.norm.weight"] = ("BF16", (h,))
    out["lm_head.weight"] = ("BF16", (129280, h))
    for i in range(62):  # 61 decoder layers + the MTP layer
        layer(i)
    mtp = "model.layers.61."
    out[mtp + "embed_tokens.weight"] = ("BF16", (129280, h))
    out[mtp + "enorm.weight"] = ("BF16", (h,))
    out[mtp + "hnorm.weight"] = ("BF16", (h,))
    out[mtp + "eh_proj.weight"] = ("BF16", (h, 2 * h))
    out[mtp + "shared_head.norm.weight"] = ("BF16", (h,))
    out[mtp + "shared_head.head.weight"] = ("BF16", (129280, h))
    return out


def _sparse_from(path, tensors: dict, cfg: dict, shards: int = 8):
    itemsize = {"BF16": 2, "F32": 4, "F8_E4M3": 1}
    names = list(tensors)
    path.mkdir()
    per = -(-len(names) // shards)
    weight_map = {}
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        header, pos = {"__metadata__": {"format": "pt"}}, 0
        for n in names[k * per : (k + 1) * per]:
            dt, shape = tensors[n]
            nb = itemsize[dt]
            for d in shape:
                nb *= d
            header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [pos, pos + nb]}
            pos += nb
            weight_map[n] = fname
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(path / fname, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            f.truncate(8 + len(raw) + pos)
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def _dsv3_ms_shapes() -> dict[str, tuple[int, ...]]:
    """The MindSpore (MindFormers) names and shapes a DeepSeek-V3 checkpoint must convert to: MTP layer dropped,
    experts stacked (E, out, in), FP8 dequantised."""
    h, e, inter, moe = 7168, 256, 18432, 2048
    out = {"model.tok_embeddings.embedding_weight": (129280, h), "model.norm_out.weight": (h,),
           "lm_head.weight": (129280, h)}  # fmt: skip
    for i in range(61):
        p, a, f = f"model.layers.{i}.", f"model.layers.{i}.attention.", f"model.layers.{i}.feed_forward."
        out |= {p + "attention_norm.weight": (h,), p + "ffn_norm.weight": (h,), a + "q2l_proj.weight": (1536, h),
                a + "lq_norm.weight": (1536,), a + "l2q_proj.weight": (128 * 192, 1536), a + "kv2l.weight": (576, h),
                a + "lkv_norm.weight": (512,), a + "lkv2kv.weight": (128 * 256, 512),
                a + "wo.weight": (h, 128 * 128)}  # fmt: skip
        if i < 3:
            out |= {f + "w1.weight": (inter, h), f + "w3.weight": (inter, h), f + "w2.weight": (h, inter)}
        else:
            out |= {f + "router.dense.weight": (e, h), f + "router.e_score_correction_bias": (e,),
                    f + "ffn.w1.weight": (e, moe, h), f + "ffn.w3.weight": (e, moe, h), f + "ffn.w2.weight": (e, h, moe),
                    f + "shared_experts.w1.weight": (moe, h), f + "shared_experts.w3.weight": (moe, h),
                    f + "shared_experts.w2.weight": (h, moe)}  # fmt: skip
    return out


def test_plan_deepseek_v3_671b_from_headers(tmp_path):
    src = _sparse_from(tmp_path / "hf", _dsv3_hf_tensors(), DSV3)
    plan = plugin("deepseek3").convert_pt_to_ms(
        src, tmp_path / "w.ckpt", dtype="bfloat16", dry_run=True, print_fn=lambda *a: None
    )
    shapes = {t.name: tuple(t.shape) for t in plan.targets}
    assert shapes == _dsv3_ms_shapes()
    assert {t.dtype for t in plan.targets} == {"bfloat16"}
    # every fp8 weight with its block scales is recognised (the MTP layer's are read by no step)
    assert len(plan.dequantised) == 62 * 5 + 3 * 3 + 59 * (3 * 256 + 3)
    assert plan.total_bytes == sum(2 * int(np.prod(s)) for s in shapes.values())
    assert plan.peak_estimate <= 256 * 2**20 + 2 * 129280 * 7168  # streamed: flat in the 256 experts
    assert not (tmp_path / "w.ckpt").exists()


# Qwen3-235B-A22B's config.json (Qwen/Qwen3-235B-A22B on the HF hub): 94 layers, all sparse, 128 experts
QWEN3_235B = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 4096,
    "intermediate_size": 12288, "moe_intermediate_size": 1536, "num_hidden_layers": 94, "num_attention_heads": 64,
    "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8,
    "decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True, "vocab_size": 151936,
    "tie_word_embeddings": False, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 40960,
    "attention_bias": False, "torch_dtype": "bfloat16",
}  # fmt: skip


def _qwen3_235b_hf_tensors() -> dict:
    h, e, moe, v = 4096, 128, 1536, 151936
    out = {"model.embed_tokens.weight": ("BF16", (v, h)), "model.norm.weight": ("BF16", (h,)),
           "lm_head.weight": ("BF16", (v, h))}  # fmt: skip
    for i in range(94):
        p = f"model.layers.{i}."
        out |= {p + "input_layernorm.weight": ("BF16", (h,)), p + "post_attention_layernorm.weight": ("BF16", (h,)),
                p + "self_attn.q_proj.weight": ("BF16", (64 * 128, h)), p + "self_attn.k_proj.weight": ("BF16", (512, h)),
                p + "self_attn.v_proj.weight": ("BF16", (512, h)), p + "self_attn.o_proj.weight": ("BF16", (h, 64 * 128)),
                p + "self_attn.q_norm.weight": ("BF16", (128,)), p + "self_attn.k_norm.weight": ("BF16", (128,)),
                p + "mlp.gate.weight": ("BF16", (e, h))}  # fmt: skip
        for x in range(e):
            out |= {p + f"mlp.experts.{x}.gate_proj.weight": ("BF16", (moe, h)),
                    p + f"mlp.experts.{x}.up_proj.weight": ("BF16", (moe, h)),
                    p + f"mlp.experts.{x}.down_proj.weight": ("BF16", (h, moe))}  # fmt: skip
    return out


def _qwen3_235b_ms_shapes() -> dict[str, tuple[int, ...]]:
    """MindFormers names and shapes written by hand: experts stacked (E, out, in), router (E, hidden)."""
    h, e, moe, v = 4096, 128, 1536, 151936
    out = {"model.tok_embeddings.embedding_weight": (v, h), "model.norm_out.weight": (h,), "lm_head.weight": (v, h)}
    for i in range(94):
        p, a, f = f"model.layers.{i}.", f"model.layers.{i}.attention.", f"model.layers.{i}.feed_forward."
        out |= {p + "attention_norm.weight": (h,), p + "ffn_norm.weight": (h,), a + "wq.weight": (8192, h),
                a + "wk.weight": (512, h), a + "wv.weight": (512, h), a + "wo.weight": (h, 8192),
                a + "q_norm.weight": (128,), a + "k_norm.weight": (128,), f + "router.dense.weight": (e, h),
                f + "ffn.w1.weight": (e, moe, h), f + "ffn.w3.weight": (e, moe, h), f + "ffn.w2.weight": (e, h, moe)}  # fmt: skip
    return out


def test_plan_qwen3_235b_a22b_from_headers(tmp_path):
    src = _sparse_from(tmp_path / "hf", _qwen3_235b_hf_tensors(), QWEN3_235B, shards=16)
    plan = plugin("qwen3_moe").convert_pt_to_ms(src, tmp_path / "w.ckpt", dry_run=True, print_fn=lambda *a: None)
    shapes = {t.name: tuple(t.shape) for t in plan.targets}
    assert shapes == _qwen3_235b_ms_shapes()
    assert plan.total_bytes == sum(2 * int(np.prod(s)) for s in shapes.values())
    assert 460e9 < plan.total_bytes < 475e9  # 235B parameters in bf16
    assert plan.peak_estimate <= 256 * 2**20 + 2 * 151936 * 4096  # streamed: flat in the 128 experts
    assert not (tmp_path / "w.ckpt").exists()
