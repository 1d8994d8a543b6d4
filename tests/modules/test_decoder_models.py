"""DecoderSpec + CausalLM composed like the families that use each variant, against the HF transformers models on the
same random weights: logits (fp32, <= 1e-4) and greedy generation with the KV cache.

Qwen2 (q/k/v bias, tied), Qwen3 (q/k norm, explicit head_dim), Mistral (sliding window smaller than the sequence,
also while decoding), GPT2 (LayerNorm, learned positions, gelu_new MLP, all biases, tied), Llama with dynamic NTK
and yarn rope scaling. The family folders own their real configs; these specs are written here from HF's configs.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.modules.blocks_helpers import (
    GRAPH,
    PYNATIVE,
    build,
    gpt2_weights,
    hf_logits,
    ids,
    llama_like_weights,
    perturb_norms,
    set_mode,
)

SMALL = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 112, "num_hidden_layers": 2}


def _hf(cls_name: str, seed: int = 0, **kwargs):
    import torch
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, cls_name.replace("ForCausalLM", "Config"))(
        **{**SMALL, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, **kwargs}
    )
    config._attn_implementation = "eager"
    model = getattr(transformers, cls_name)(config).eval()
    perturb_norms(model)
    return model


def _spec(hf, **overrides):
    from mf_ext.modules import DecoderSpec, RopeConfig

    c = hf.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kwargs = {
        "hidden_size": c.hidden_size,
        "num_layers": c.num_hidden_layers,
        "num_heads": c.num_attention_heads,
        "num_kv_heads": c.num_key_value_heads,
        "head_dim": head_dim,
        "vocab_size": c.vocab_size,
        "intermediate_size": c.intermediate_size,
        "norm_eps": c.rms_norm_eps,
        "tie_word_embeddings": c.tie_word_embeddings,
        "rope": RopeConfig.from_hf(
            head_dim,
            c.rope_theta,
            getattr(c, "rope_scaling", None),
            c.max_position_embeddings,
            kind_aliases={"llama3": "smoothed"},
        ),
    }
    kwargs.update(overrides)
    return DecoderSpec(**kwargs)


def _hf_generate(hf, prompt: np.ndarray, new_tokens: int) -> np.ndarray:
    import torch

    with torch.no_grad():
        return hf.generate(
            torch.from_numpy(prompt),
            attention_mask=torch.ones(prompt.shape, dtype=torch.long),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        ).numpy()


def test_qwen2_bias_tied_logits():
    from mf_ext.generation import logits

    set_mode(PYNATIVE)
    hf = _hf("Qwen2ForCausalLM", num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    ours = build(_spec(hf, qkv_bias=True), llama_like_weights(hf))
    x = ids(2, 20, seed=1)
    assert np.abs(logits(ours, x) - hf_logits(hf, x)).max() <= 1e-4


def test_qwen3_qk_norm_head_dim_logits():
    from mf_ext.generation import logits

    set_mode(PYNATIVE)
    hf = _hf("Qwen3ForCausalLM", num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=False)
    ours = build(_spec(hf, qk_norm=True), llama_like_weights(hf))
    x = ids(2, 20, seed=2)
    assert np.abs(logits(ours, x) - hf_logits(hf, x)).max() <= 1e-4


@pytest.fixture(scope="module")
def mistral():
    hf = _hf("MistralForCausalLM", num_attention_heads=4, num_key_value_heads=2, sliding_window=6, seed=3)
    return hf, _spec(hf, sliding_window=hf.config.sliding_window)


def test_mistral_sliding_window_logits(mistral):
    from mf_ext.generation import logits

    set_mode(PYNATIVE)
    hf, spec = mistral
    ours = build(spec, llama_like_weights(hf))
    x = ids(2, 24, seed=4)  # 4x the window
    ref = hf_logits(hf, x)
    assert np.abs(logits(ours, x) - ref).max() <= 1e-4
    full = build(_spec(hf), llama_like_weights(hf))  # the window really changes the result at this length
    assert np.abs(logits(full, x) - ref).max() > 1e-3


def test_mistral_sliding_window_generation_graph(mistral):
    """Graph mode, KV cache: decode steps far past the window still see only the last 6 keys, as HF does."""
    from mf_ext.generation import generate

    set_mode(GRAPH)
    hf, spec = mistral
    ours = build(spec, llama_like_weights(hf))
    prompt = ids(2, 9, seed=5)
    np.testing.assert_array_equal(generate(ours, prompt, 20), _hf_generate(hf, prompt, 20))


@pytest.fixture(scope="module")
def gpt2():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(6)
    cfg = GPT2Config(vocab_size=256, n_positions=128, n_embd=64, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=2)
    cfg._attn_implementation = "eager"
    hf = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # HF inits biases at 0 and LayerNorms at 1/0: randomise so every parameter shows
        for name, p in hf.named_parameters():
            if p.ndim == 1:
                p.copy_(
                    torch.randn_like(p) * 0.1
                    + (
                        1.0
                        if name.endswith("ln_1.weight") or "ln_2.weight" in name or name.endswith("ln_f.weight")
                        else 0.0
                    )
                )
    return hf


def _gpt2_spec(hf, fused: bool = False):
    from mf_ext.modules import DecoderSpec

    c = hf.config
    return DecoderSpec(
        qkv_concat=fused,
        qkv_layout="stacked",
        hidden_size=c.n_embd,
        num_layers=c.n_layer,
        num_heads=c.n_head,
        vocab_size=c.vocab_size,
        intermediate_size=4 * c.n_embd,
        qkv_bias=True,
        o_bias=True,
        mlp="gelu",
        mlp_act=c.activation_function,
        mlp_bias=True,
        norm="layer",
        norm_eps=c.layer_norm_epsilon,
        learned_positions=c.n_positions,
        tie_word_embeddings=True,
    )


@pytest.mark.parametrize(
    ("mode", "fused"),
    [(PYNATIVE, False), (PYNATIVE, True), (GRAPH, False)],
    ids=["pynative", "pynative-w_qkv", "graph"],
)
def test_gpt2_logits(gpt2, mode, fused):
    """GPT2; ``w_qkv`` keeps c_attn fused in the stacked [q; k; v] layout (transposed from Conv1D's (in, out))."""
    from mf_ext.generation import logits

    set_mode(mode)
    weights = gpt2_weights(gpt2)
    if fused:
        for leaf in ("weight", "bias"):
            parts = [weights.pop(f"model.layers.{i}.attention.w{n}.{leaf}") for i in (0, 1) for n in "qkv"]
            for i in (0, 1):
                weights[f"model.layers.{i}.attention.w_qkv.{leaf}"] = np.concatenate(parts[3 * i : 3 * i + 3])
        np.testing.assert_array_equal(
            weights["model.layers.1.attention.w_qkv.weight"],
            gpt2.transformer.h[1].attn.c_attn.weight.detach().numpy().T,
        )
    ours = build(_gpt2_spec(gpt2, fused), weights)
    x = ids(2, 30, seed=7)
    assert np.abs(logits(ours, x) - hf_logits(gpt2, x)).max() <= 1e-4


def test_gpt2_left_padded_generation(gpt2):
    """Learned positions follow the attention mask in a left-padded batch (HF GPT2 derives them the same way)."""
    import torch

    from mf_ext.generation import generate

    set_mode(PYNATIVE)
    ours = build(_gpt2_spec(gpt2), gpt2_weights(gpt2))
    rows = [list(ids(1, n, seed=30 + n)[0]) for n in (8, 5)]
    got = generate(ours, rows, 8)
    x = np.array([[0] * (8 - len(r)) + r for r in rows])
    mask = (np.arange(8)[None] >= 8 - np.array([len(r) for r in rows])[:, None]).astype(np.int64)
    with torch.no_grad():
        want = gpt2.generate(
            torch.from_numpy(x),
            attention_mask=torch.from_numpy(mask),
            max_new_tokens=8,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        ).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "scaling",
    [
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32},
        {
            "rope_type": "yarn",
            "factor": 16.0,
            "mscale": 1.0,
            "mscale_all_dim": 0.8,
            "original_max_position_embeddings": 32,
        },
        {"rope_type": "dynamic", "factor": 4.0},
    ],
    ids=["yarn", "yarn-mscale", "dynamic"],
)
def test_llama_rope_scalings_logits(scaling):
    """head_dim 64 and 160 tokens past the original 32 positions: every band of the scaled frequencies is used."""
    from mf_ext.generation import logits

    set_mode(PYNATIVE)
    hf = _hf(
        "LlamaForCausalLM",
        num_attention_heads=2,
        num_key_value_heads=1,
        hidden_size=128,
        rope_theta=10000.0,
        max_position_embeddings=32,
        rope_scaling=scaling,
        seed=8,
    )
    ours = build(_spec(hf), llama_like_weights(hf))
    x = ids(1, 160, seed=9)
    ref = hf_logits(hf, x)
    assert np.abs(logits(ours, x) - ref).max() <= 1e-4
    plain = build(_spec(hf, rope=_spec(hf).rope.__class__(64, 10000.0)), llama_like_weights(hf))
    assert np.abs(logits(plain, x) - ref).max() > 1e-3  # the scaling is visible at this tolerance


def test_llama_dynamic_ntk_generation_graph():
    """Dynamic NTK while decoding past max_position_embeddings: the frequencies follow the current length as in
    HF's generate (prefill and each step), in one graph per shape."""
    from mf_ext.generation import generate

    set_mode(GRAPH)
    hf = _hf(
        "LlamaForCausalLM",
        num_attention_heads=2,
        num_key_value_heads=1,
        hidden_size=128,
        rope_theta=10000.0,
        max_position_embeddings=16,
        rope_scaling={"rope_type": "dynamic", "factor": 4.0},
        seed=10,
    )
    ours = build(_spec(hf), llama_like_weights(hf))
    prompt = ids(1, 12, seed=11)
    out = generate(ours, prompt, 24)
    np.testing.assert_array_equal(out, _hf_generate(hf, prompt, 24))
    # The prefill chunk is right-padded to 64 tokens: without valid_length the padding would count as sequence
    # length and rescale the prompt's frequencies (HF computes them for 12 tokens).
    padded = np.zeros((1, 64), np.int64)
    padded[:, :12] = prompt
    want = hf_logits(hf, prompt)[:, -1]
    for valid, close in ((12, True), (None, False)):
        cache = ours.init_kv_cache(1, 256)
        inputs = ours.prepare_inputs_for_generation(
            padded, past_key_values=cache, cache_position=0, logit_index=11, valid_length=valid
        )
        diff = np.abs(ours(**inputs)[0].asnumpy()[:, 0] - want).max()
        assert (diff <= 1e-4) if close else (diff > 1e-3), (valid, diff)


def test_param_renames_give_another_layout():
    """A family renames parameters by regex (structural prefixes included); the renamed checkpoint loads strictly
    and computes the same logits."""
    import mindspore as ms
    from mindformers.models.configuration_utils import PretrainedConfig

    from mf_ext.generation import logits
    from mf_ext.modules import CausalLM

    set_mode(PYNATIVE)
    hf = _hf("Qwen2ForCausalLM", num_attention_heads=4, num_key_value_heads=2, seed=12)
    spec = _spec(hf, qkv_bias=True)
    weights = llama_like_weights(hf)
    renames = (
        (r"^model\.layers\.(\d+)\.attention\.", r"transformer.encoder.layers.\1.self_attention."),
        (r"\.feed_forward\.w2\.", ".mlp.dense_4h_to_h."),
        (r"^model\.tok_embeddings\.embedding_weight$", "transformer.embedding.word_embeddings.embedding_table"),
    )

    class Renamed(CausalLM):
        config_class = PretrainedConfig
        PARAM_RENAMES = renames

        @classmethod
        def decoder_spec(cls, config):
            return spec

    model = Renamed(PretrainedConfig())
    names = {p.name for p in model.get_parameters()}
    assert "transformer.encoder.layers.1.self_attention.wq.bias" in names
    assert "model.layers.0.mlp.dense_4h_to_h.weight" in names and "model.norm_out.weight" in names
    assert "transformer.embedding.word_embeddings.embedding_table" in names and len(names) == len(weights)
    import re

    renamed = {}
    for k, v in weights.items():
        for pattern, repl in renames:
            k = re.sub(pattern, repl, k)
        renamed[k] = ms.Parameter(ms.Tensor(v), name=k)
    not_loaded, unexpected = ms.load_param_into_net(model, renamed, strict_load=True)
    assert not not_loaded and not unexpected
    model.set_train(False)
    x = ids(1, 12, seed=13)
    assert np.abs(logits(model, x) - hf_logits(hf, x)).max() <= 1e-4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_kv_heads": 3}, r"DecoderSpec.num_kv_heads: expected a positive divisor of num_heads=4, got 3"),
        ({"hidden_size": 66}, r"hidden_size: 66 is not divisible by num_heads=4"),
        ({"mlp": "moe"}, r"DecoderSpec.mlp: expected 'swiglu' or 'gelu', got 'moe'"),
        ({"norm": "batch"}, r"DecoderSpec.norm: expected 'rms' or 'layer', got 'batch'"),
        ({"sliding_window": 0}, r"DecoderSpec.sliding_window: expected a positive int or None, got 0"),
        ({"num_layers": 0}, r"DecoderSpec.num_layers: expected a positive int, got 0"),
    ],
)
def test_decoder_spec_rejects_bad_values(kwargs, match):
    from mf_ext.modules import DecoderSpec

    base = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 256, "intermediate_size": 64}
    with pytest.raises(ValueError, match=match):
        DecoderSpec(**{**base, **kwargs})
