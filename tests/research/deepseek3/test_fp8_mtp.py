"""DeepSeek-V3's released checkpoint layout through the deepseek3 converter, on a small model: FP8 linear weights
with 128x128 block scales (dequantised, compared with torch's own float8_e4m3fn times the block scale) and the MTP
layer stored as ``model.layers.{num_hidden_layers}`` (dropped; every other tensor converted)."""

from __future__ import annotations

import json

import torch

from tests.convert.convert_helpers import plugin

# hidden 160: the projections reading the hidden state span two 128-column blocks
CFG = dict(vocab_size=64, hidden_size=160, intermediate_size=96, moe_intermediate_size=24, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=4, q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8,
           qk_rope_head_dim=8, v_head_dim=12, first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2,
           n_group=2, topk_group=1)  # fmt: skip
QUANT = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}
FP8_LINEARS = ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _dequant(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    s = scale.repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]
    return w.to(torch.float32) * s


def _released_layout(tmp_path):
    """A random DeepseekV3ForCausalLM's weights in DeepSeek's release layout: fp8 linears + scales, an MTP layer."""
    from safetensors.torch import save_file
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    torch.manual_seed(0)
    model = DeepseekV3ForCausalLM(DeepseekV3Config(**CFG))
    gen = torch.Generator().manual_seed(1)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # the MTP module: a copy of the last decoder layer at index num_hidden_layers, plus its own projections
    mtp = {k.replace("model.layers.1.", "model.layers.2."): v.clone() for k, v in state.items() if ".layers.1." in k}
    mtp |= {"model.layers.2.enorm.weight": torch.ones(160), "model.layers.2.hnorm.weight": torch.ones(160),
            "model.layers.2.eh_proj.weight": torch.randn(160, 320), "model.layers.2.embed_tokens.weight":
            torch.randn(64, 160), "model.layers.2.shared_head.norm.weight": torch.ones(160),
            "model.layers.2.shared_head.head.weight": torch.randn(64, 160)}  # fmt: skip
    state |= mtp
    out = {}
    for name, t in state.items():
        if name.endswith(".weight") and name.split(".")[-2] in FP8_LINEARS:
            out[name] = (t * 2000).clamp(-448, 448).to(torch.float8_e4m3fn)
            blocks = (-(-t.shape[0] // 128), -(-t.shape[1] // 128))
            out[name + "_scale_inv"] = torch.rand(blocks, generator=gen) * 1e-3 + 1e-4
        else:
            out[name] = t.to(torch.bfloat16) if t.dtype == torch.float32 and "correction_bias" not in name else t
    src = tmp_path / "hf"
    src.mkdir()
    save_file(out, str(src / "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict() | {"num_nextn_predict_layers": 1, "quantization_config": QUANT,
                                    "architectures": ["DeepseekV3ForCausalLM"]}  # fmt: skip
    (src / "config.json").write_text(json.dumps(cfg))
    return src, out


def test_fp8_blocks_dequantised_and_mtp_layer_dropped(tmp_path):
    from safetensors.torch import load_file

    src, hf = _released_layout(tmp_path)
    notes: list[str] = []
    plugin("deepseek3").convert_pt_to_ms(src, tmp_path / "ms", "float32", format="safetensors", progress=False,
                                         print_fn=notes.append)  # fmt: skip
    ms = {}
    for f in sorted((tmp_path / "ms").glob("*.safetensors")):
        ms.update(load_file(str(f)))
    assert not [n for n in ms if ".layers.2." in n], "the MTP layer must be dropped"
    n_fp8 = sum(1 for n in hf if n.endswith("_scale_inv") and ".layers.2." not in n)
    assert sum(t.numel() for t in ms.values()) == sum(
        t.numel() for n, t in hf.items() if ".layers.2." not in n and not n.endswith("_scale_inv")
    )
    assert n_fp8 == 5 * 2 + 3 + 3 * 4 + 3  # attention x2 layers, dense MLP, 4 experts, shared expert

    def want(name):
        return _dequant(hf[name], hf[name + "_scale_inv"])

    a = "model.layers.1.self_attn."
    assert torch.equal(ms["model.layers.1.attention.kv2l.weight"], want(a + "kv_a_proj_with_mqa.weight"))
    assert torch.equal(ms["model.layers.1.attention.wo.weight"], want(a + "o_proj.weight"))
    assert torch.equal(ms["model.layers.0.feed_forward.w2.weight"], want("model.layers.0.mlp.down_proj.weight"))
    experts = torch.stack([want(f"model.layers.1.mlp.experts.{e}.up_proj.weight") for e in range(4)])
    assert torch.equal(ms["model.layers.1.feed_forward.ffn.w3.weight"], experts)
    bias = "model.layers.1.mlp.gate.e_score_correction_bias"
    assert torch.equal(ms["model.layers.1.feed_forward.router.e_score_correction_bias"], hf[bias])
    assert "quantization_config" not in json.loads((tmp_path / "ms" / "config.json").read_text())
