"""The MLA attention block against HF transformers' ``DeepseekV2Attention`` (plain q projection, rotary as complex
pairs) and ``DeepseekV3Attention`` (query rank, interleaved-pairs rotary, yarn with the softmax mscale, and the
half-split variant), holding the same random weights; and its KV cache (prefill + decode steps = one forward)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import PYNATIVE, set_mode, to_np

HIDDEN, HEADS, SEQ = 32, 4, 7
NAMES = {
    "q_proj": "q_proj",
    "q_a_proj": "q2l_proj",
    "q_a_layernorm": "lq_norm",
    "q_b_proj": "l2q_proj",
    "kv_a_proj_with_mqa": "kv2l",
    "kv_a_layernorm": "lkv_norm",
    "kv_b_proj": "lkv2kv",
    "o_proj": "wo",
}
_YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4, "beta_fast": 32, "beta_slow": 1,
         "mscale": 0.707, "mscale_all_dim": 0.707}  # fmt: skip


def _hf(version: int, q_lora_rank, rope_scaling=None, interleave=True):
    import torch

    common = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=HEADS, kv_lora_rank=12,
                  q_lora_rank=q_lora_rank, qk_nope_head_dim=6, qk_rope_head_dim=4, v_head_dim=10,
                  rope_scaling=rope_scaling, max_position_embeddings=64, attention_bias=q_lora_rank is not None)  # fmt: skip
    if version == 2:
        from transformers import DeepseekV2Config
        from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Attention as Attn
        from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2RotaryEmbedding as Rope

        cfg = DeepseekV2Config(**common)
    else:
        from transformers import DeepseekV3Config
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention as Attn
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3RotaryEmbedding as Rope

        cfg = DeepseekV3Config(**common, rope_interleave=interleave)
    cfg._attn_implementation = "eager"
    torch.manual_seed(version)
    attn = Attn(cfg, layer_idx=0).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn_like(p) * (0.2 if p.ndim > 1 else 0.1) + (1.0 if p.ndim == 1 else 0.0))
    return cfg, attn, Rope(cfg)


def _ours(cfg, attn, style: str):
    import mindspore as ms

    from mf_ext.modules import RopeConfig, RotaryEmbedding
    from mf_ext.modules.mla import MLAttention
    from mf_ext.modules.rotary import rope_parameters

    rope = RopeConfig.from_hf(cfg.qk_rope_head_dim, cfg.rope_theta, cfg.rope_scaling, cfg.max_position_embeddings,
                              style=style)  # fmt: skip
    cell = MLAttention(HIDDEN, HEADS, cfg.kv_lora_rank, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim,
                       q_rank=cfg.q_lora_rank, bias=cfg.attention_bias, softmax_scale=attn.scaling,
                       rope_interleaved=style == "interleaved")  # fmt: skip
    params = dict(cell.parameters_and_names())
    theirs = {}
    for name, t in attn.state_dict().items():
        mod, leaf = name.rsplit(".", 1)
        theirs[f"{NAMES[mod]}.{leaf}"] = to_np(t)
    assert set(params) == set(theirs), (sorted(params), sorted(theirs))
    for name, value in theirs.items():
        params[name].set_data(ms.Tensor(value))
    assert rope_parameters(rope)[0].shape == (cfg.qk_rope_head_dim // 2,)
    return cell, RotaryEmbedding(rope)


def _causal(seq, kv_len, start=0):
    import mindspore as ms

    from mf_ext.modules import attention_bias

    return attention_bias(ms.Tensor(np.arange(start, start + seq, dtype=np.int32)), kv_len)


@pytest.mark.parametrize(
    "version,q_rank,scaling,interleave",
    [(2, None, None, True), (3, 8, _YARN, True), (3, 8, None, False)],
    ids=["v2-lite-complex", "v3-yarn-interleave", "v3-half"],
)
def test_mla_matches_hf_attention(version, q_rank, scaling, interleave):
    import mindspore as ms
    import torch

    set_mode(PYNATIVE)
    cfg, attn, hf_rope = _hf(version, q_rank, scaling, interleave)
    x = np.random.default_rng(1).standard_normal((2, SEQ, HIDDEN)).astype(np.float32)
    pos = torch.arange(SEQ)[None].expand(2, -1)
    mask = torch.full((SEQ, SEQ), torch.finfo(torch.float32).min).triu(1)[None, None]
    with torch.no_grad():
        xt = torch.tensor(x)
        if version == 2:
            want = attn(xt, attention_mask=mask, position_embeddings=hf_rope(xt, pos))[0]
        else:
            want = attn(xt, position_embeddings=hf_rope(xt, pos), attention_mask=mask)[0]
    cell, rope = _ours(cfg, attn, "interleaved" if interleave else "half")
    cos, sin = rope(ms.Tensor(np.arange(SEQ, dtype=np.int32)))
    got, _, _ = cell(ms.Tensor(x), cos, sin, _causal(SEQ, SEQ))
    np.testing.assert_allclose(got.asnumpy(), want.numpy(), atol=2e-5, rtol=0)
    if scaling is not None:  # the yarn mscale reaches the softmax scale (a dropped mscale fails above)
        assert attn.scaling != attn.qk_head_dim**-0.5

    # static cache: a 4-token prefill and three single-token steps into a 10-slot buffer = the full forward
    from mf_ext.modules import cache_slots

    k_cache = ms.Tensor(np.zeros((2, HEADS, 10, attn.qk_head_dim), np.float32))
    v_cache = ms.Tensor(np.zeros((2, HEADS, 10, cfg.v_head_dim), np.float32))
    outs = []
    for start, stop in ((0, 4), (4, 5), (5, 6), (6, 7)):
        c, s = rope(ms.Tensor(np.arange(start, stop, dtype=np.int32)))
        start_t = ms.Tensor(start, ms.int32)
        out, k_cache, v_cache = cell(ms.Tensor(x[:, start:stop]), c, s, _causal(stop - start, 10, start), k_cache,
                                     v_cache, cache_slots(start_t, stop - start, 10))  # fmt: skip
        outs.append(out.asnumpy())
    np.testing.assert_allclose(np.concatenate(outs, 1), want.numpy(), atol=2e-5, rtol=0)
