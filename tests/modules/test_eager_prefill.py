"""``generate(eager_prefill=True)`` in graph mode: the prompt is prefilled in PyNative, only the decode graph is
compiled (MindSpore's own compile count), and the greedy tokens are HF's."""

from __future__ import annotations

import numpy as np

from tests.modules.blocks_helpers import GRAPH, build, ids, llama_like_weights, set_mode


def test_eager_prefill_compiles_only_the_decode_graph(monkeypatch):
    import mindspore as ms
    import torch
    from mindspore.graph import api as graph_api
    from transformers import LlamaConfig, LlamaForCausalLM

    from mf_ext.generation import generate
    from mf_ext.modules import DecoderSpec, RopeConfig

    torch.manual_seed(1)
    cfg = LlamaConfig(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=10000.0,
        max_position_embeddings=512,
        pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    hf = LlamaForCausalLM(cfg).eval()
    spec = DecoderSpec(
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        vocab_size=256,
        intermediate_size=64,
        norm_eps=cfg.rms_norm_eps,
        rope=RopeConfig(8, 10000.0),
    )
    set_mode(GRAPH)
    built: list[str] = []
    original = graph_api._CellGraphExecutor.compile

    def counting(self, obj, *args, **kwargs):
        phase, new = original(self, obj, *args, **kwargs)
        if new:
            built.append(type(obj).__name__)
        return phase, new

    monkeypatch.setattr(graph_api._CellGraphExecutor, "compile", counting)
    model = build(spec, llama_like_weights(hf))
    prompt = ids(1, 70, seed=5)  # two prefill chunks, both eager
    got = generate(model, prompt, 6, eager_prefill=True)
    assert len(built) == 1, built  # the decode graph only
    assert ms.get_context("mode") == ms.GRAPH_MODE  # restored after the prefill
    with torch.no_grad():
        want = hf.generate(
            torch.from_numpy(prompt),
            attention_mask=torch.ones(prompt.shape, dtype=torch.long),
            max_new_tokens=6,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        ).numpy()
    np.testing.assert_array_equal(got, want)
