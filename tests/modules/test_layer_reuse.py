"""One decoder-layer graph for all layers (MindSpore cell reuse), without wrong sharing, and no recompile per prompt
length.

MindSpore shares a reused cell's graph among cells with the same reuse key and uses the first cell's graph for the
others; our key is a fingerprint of the layer's structure, so layers changed after construction must still compute
their own function (graph mode == PyNative). Compile counts are MindSpore's own (``_CellGraphExecutor.compile``
reports whether it built a new graph).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import (
    GRAPH,
    PYNATIVE,
    build,
    hf_logits,
    ids,
    llama_like_weights,
    perturb_norms,
    set_mode,
)


@pytest.fixture(scope="module")
def hf_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=112,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=10000.0,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    hf = LlamaForCausalLM(cfg).eval()
    perturb_norms(hf)
    return hf


def _spec(hf):
    from mf_ext.modules import DecoderSpec, RopeConfig

    c = hf.config
    return DecoderSpec(
        hidden_size=c.hidden_size,
        num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads,
        num_kv_heads=c.num_key_value_heads,
        vocab_size=c.vocab_size,
        intermediate_size=c.intermediate_size,
        norm_eps=c.rms_norm_eps,
        rope=RopeConfig(c.hidden_size // c.num_attention_heads, c.rope_theta),
    )


def _graph_and_pynative(model, x):
    from mf_ext.generation import logits

    set_mode(GRAPH)
    graph = logits(model, x)
    set_mode(PYNATIVE)
    return graph, logits(model, x)


def test_structure_key_tells_layers_apart(hf_llama):
    from mf_ext.modules import structure_key

    model = build(_spec(hf_llama), llama_like_weights(hf_llama))
    keys = [structure_key(layer) for layer in model.model.layers]
    assert len(set(keys)) == 1  # identical layers share one graph
    model.model.layers[1].attention.scale = 0.05  # head_dim 16: the default is 0.25
    assert structure_key(model.model.layers[1]) != keys[0] == structure_key(model.model.layers[2])
    assert model.model.layers[1].cell_init_args != model.model.layers[0].cell_init_args
    model.set_train(True)  # training graphs are built without reuse (see DecoderLayer.cell_init_args)
    assert not hasattr(model.model.layers[0], "cell_init_args")


def test_layer_changed_after_construction_gets_its_own_graph(hf_llama):
    """One layer's attribute changed after the model was built: graph mode must not reuse layer 0's graph for it."""
    set_mode(GRAPH)
    model = build(_spec(hf_llama), llama_like_weights(hf_llama))
    model.model.layers[1].attention.scale = 0.05
    x = ids(1, 16, seed=1)
    graph, pynative = _graph_and_pynative(model, x)
    assert np.abs(graph - pynative).max() <= 1e-5
    assert np.abs(graph - hf_logits(hf_llama, x)).max() > 1e-3  # the change is visible


def test_lora_on_one_layer_only(hf_llama):
    """LoRA wrapping one layer's wq (a structure change below the layer): graph mode == PyNative."""
    import mindspore as ms

    from mf_ext.train.lora import LoraSettings, apply_lora

    set_mode(GRAPH)
    model = build(_spec(hf_llama), llama_like_weights(hf_llama))
    targets = apply_lora(model, LoraSettings(rank=2, alpha=4.0, target_modules="model\\.layers\\.1\\.attention\\.wq"))
    assert targets == ["model.layers.1.attention.wq"]
    lora_b = next(p for p in model.get_parameters() if p.name.endswith("lora_b"))
    lora_b.set_data(ms.Tensor(np.full(lora_b.shape, 0.5, np.float32)))
    x = ids(1, 16, seed=2)
    graph, pynative = _graph_and_pynative(model, x)
    assert np.abs(graph - pynative).max() <= 1e-5
    assert np.abs(graph - hf_logits(hf_llama, x)).max() > 1e-3


def test_reuse_on_and_off_compute_the_same(hf_llama, monkeypatch):
    from mf_ext.generation import logits

    set_mode(GRAPH)
    x = ids(2, 12, seed=3)
    shared = logits(build(_spec(hf_llama), llama_like_weights(hf_llama)), x)
    monkeypatch.setenv("MF_EXT_LAYER_REUSE", "0")
    separate = build(_spec(hf_llama), llama_like_weights(hf_llama))
    assert not hasattr(separate.model.layers[0], "cell_init_args")  # no reuse key: each layer parsed on its own
    np.testing.assert_array_equal(logits(separate, x), shared)
    assert np.abs(shared - hf_logits(hf_llama, x)).max() <= 1e-4


def test_new_prompt_length_compiles_nothing(hf_llama, monkeypatch):
    """Graph mode: after a first generate(), prompts of other lengths (one crossing the 64-token prefill chunk) reuse
    the compiled prefill and decode graphs, and still give HF's greedy tokens."""
    import torch
    from mindspore.graph import api as graph_api

    from mf_ext.generation import generate

    set_mode(GRAPH)
    built: list[str] = []
    original = graph_api._CellGraphExecutor.compile

    def counting(self, obj, *args, **kwargs):
        phase, new = original(self, obj, *args, **kwargs)
        if new:
            built.append(type(obj).__name__)
        return phase, new

    monkeypatch.setattr(graph_api._CellGraphExecutor, "compile", counting)
    model = build(_spec(hf_llama), llama_like_weights(hf_llama))
    generate(model, ids(1, 10, seed=4), 8)
    assert len(built) == 2, built  # one prefill graph, one decode graph
    for n in (70, 33):
        prompt = ids(1, n, seed=n)
        got = generate(model, prompt, 8)
        with torch.no_grad():
            want = hf_llama.generate(
                torch.from_numpy(prompt),
                attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                max_new_tokens=8,
                do_sample=False,
                pad_token_id=0,
                eos_token_id=None,
            ).numpy()
        np.testing.assert_array_equal(got, want)
    assert len(built) == 2, built
