"""Shared helpers for the building-block tests: HF state dicts mapped onto mf_ext.modules names, model builders."""

from __future__ import annotations

import numpy as np

GRAPH, PYNATIVE = 0, 1


def set_mode(mode: int) -> None:
    import mindspore as ms

    ms.set_context(device_target="CPU", mode=mode)


def to_np(t) -> np.ndarray:
    return t.detach().float().numpy() if hasattr(t, "detach") else t.asnumpy()


def ids(batch: int, seq: int, seed: int = 0, vocab: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, vocab, (batch, seq)).astype(np.int64)


def perturb_norms(model) -> None:
    """HF initialises norms at exactly 1 (and LayerNorm biases at 0): perturb them so a mis-mapped norm shows."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or "ln_f" in name:
                p.add_(torch.randn_like(p) * 0.1)


_LLAMA_LIKE = {
    "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo",
    "self_attn.q_norm": "attention.q_norm",
    "self_attn.k_norm": "attention.k_norm",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "feed_forward.w1",
    "mlp.up_proj": "feed_forward.w3",
    "mlp.down_proj": "feed_forward.w2",
}


def llama_like_weights(hf_model) -> dict[str, np.ndarray]:
    """HF Llama/Qwen2/Qwen3/Mistral state dict under mf_ext.modules' default (MindFormers Llama) names."""
    out = {}
    for name, tensor in hf_model.state_dict().items():
        arr = to_np(tensor)
        if name == "model.embed_tokens.weight":
            out["model.tok_embeddings.embedding_weight"] = arr
        elif name == "model.norm.weight":
            out["model.norm_out.weight"] = arr
        elif name == "lm_head.weight":
            if not hf_model.config.tie_word_embeddings:
                out[name] = arr
        else:
            prefix, rest = name.split(".layers.", 1)
            layer, sub = rest.split(".", 1)
            module, leaf = sub.rsplit(".", 1)
            out[f"model.layers.{layer}.{_LLAMA_LIKE[module]}.{leaf}"] = arr
    return out


def gpt2_weights(hf_model) -> dict[str, np.ndarray]:
    """HF GPT2LMHeadModel state dict (Conv1D weights stored (in, out)) under mf_ext.modules names."""
    hidden = hf_model.config.n_embd
    out = {}
    for name, tensor in hf_model.state_dict().items():
        arr = to_np(tensor)
        if name in ("lm_head.weight",) or name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue  # tied head; causal-mask buffers of old checkpoints
        if name == "transformer.wte.weight":
            out["model.tok_embeddings.embedding_weight"] = arr
        elif name == "transformer.wpe.weight":
            out["model.pos_embeddings.embedding_weight"] = arr
        elif name.startswith("transformer.ln_f."):
            out["model.norm_out." + {"weight": "gamma", "bias": "beta"}[name.rsplit(".", 1)[1]]] = arr
        else:
            layer, sub = name[len("transformer.h.") :].split(".", 1)
            base = f"model.layers.{layer}."
            module, leaf = sub.rsplit(".", 1)
            if module in ("ln_1", "ln_2"):
                norm = "attention_norm" if module == "ln_1" else "ffn_norm"
                out[base + norm + "." + {"weight": "gamma", "bias": "beta"}[leaf]] = arr
            elif module == "attn.c_attn":
                parts = np.split(arr, 3, axis=-1)  # Conv1D: (in, 3 * hidden) = [q | k | v] columns
                for key, part in zip("qkv", parts, strict=True):
                    out[f"{base}attention.w{key}.{leaf}"] = part.T.copy() if leaf == "weight" else part
            elif module == "attn.c_proj":
                out[f"{base}attention.wo.{leaf}"] = arr.T.copy() if leaf == "weight" else arr
            else:  # mlp.c_fc / mlp.c_proj
                mine = "feed_forward." + module.split(".")[1]
                out[f"{base}{mine}.{leaf}"] = arr.T.copy() if leaf == "weight" else arr
    assert out["model.layers.0.attention.wq.weight"].shape == (hidden, hidden)
    return out


def build(spec, weights: dict[str, np.ndarray] | None = None, cls_name: str = "BlocksLM"):
    """A ``CausalLM`` for ``spec`` with ``weights`` loaded strictly (every parameter, nothing extra)."""
    import mindspore as ms
    from mindformers.models.configuration_utils import PretrainedConfig

    from mf_ext.modules import CausalLM

    attrs = {"config_class": PretrainedConfig, "decoder_spec": classmethod(lambda cls, config: spec)}
    model = type(cls_name, (CausalLM,), attrs)(PretrainedConfig(pad_token_id=0, eos_token_id=2, bos_token_id=1))
    if weights is not None:
        params = {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in weights.items()}
        not_loaded, unexpected = ms.load_param_into_net(model, params, strict_load=True)
        assert not not_loaded and not unexpected, (not_loaded, unexpected)
    model.set_train(False)
    return model


def hf_logits(hf_model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
    import torch

    with torch.no_grad():
        kwargs = {} if attention_mask is None else {"attention_mask": torch.from_numpy(attention_mask)}
        return hf_model(torch.from_numpy(input_ids), **kwargs).logits.float().numpy()
