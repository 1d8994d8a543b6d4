"""Shared helpers for conversion tests: synthetic HF checkpoints written directly with safetensors (fast, any
shape, any dtype, any sharding) and exact byte-level readers."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LLAMA = REPO / "research" / "llama3_1"
QWEN2 = REPO / "research" / "qwen2"


def plugin(family: str):
    from mf_ext.registry import load_plugin

    return load_plugin(LLAMA if family == "llama" else QWEN2)


def hf_names(family: str, layers: int, tied: bool) -> list[str]:
    names = ["model.embed_tokens.weight"]
    for i in range(layers):
        a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        names += [a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight", a + "o_proj.weight"]
        if family == "qwen2":
            names += [a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"]
        names += [
            m + "gate_proj.weight",
            m + "up_proj.weight",
            m + "down_proj.weight",
            f"model.layers.{i}.input_layernorm.weight",
            f"model.layers.{i}.post_attention_layernorm.weight",
        ]
    names.append("model.norm.weight")
    if not tied:
        names.append("lm_head.weight")
    return names


def hf_shapes(family, layers, hidden, heads, kv_heads, head_dim, inter, vocab, tied) -> dict[str, tuple]:
    q, kv = heads * head_dim, kv_heads * head_dim
    out = {}
    for n in hf_names(family, layers, tied):
        if n.endswith("embed_tokens.weight") or n == "lm_head.weight":
            s = (vocab, hidden)
        elif "q_proj" in n:
            s = (q, hidden) if n.endswith("weight") else (q,)
        elif "k_proj" in n or "v_proj" in n:
            s = (kv, hidden) if n.endswith("weight") else (kv,)
        elif "o_proj" in n:
            s = (hidden, q)
        elif "gate_proj" in n or "up_proj" in n:
            s = (inter, hidden)
        elif "down_proj" in n:
            s = (hidden, inter)
        else:
            s = (hidden,)
        out[n] = s
    return out


def synth_hf(
    path,
    *,
    family: str = "llama",
    dtype: str = "float32",
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int | None = None,
    inter: int = 48,
    vocab: int = 96,
    tied: bool = False,
    shards: int = 1,
    seed: int = 0,
    config_extra: dict | None = None,
) -> Path:
    """Write an HF-layout checkpoint of random values (+ config.json); ``shards > 1`` spreads tensors
    round-robin so the tensors of one layer land in different shards."""
    import torch
    from safetensors.torch import save_file

    head_dim = head_dim or hidden // heads
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    shapes = hf_shapes(family, layers, hidden, heads, kv_heads, head_dim, inter, vocab, tied)
    tensors = {n: (torch.randn(s, generator=g) * 0.5).to(getattr(torch, dtype)) for n, s in shapes.items()}
    if shards == 1:
        save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    else:
        files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        weight_map = {n: files[i % shards] for i, n in enumerate(tensors)}
        for f in files:
            save_file({n: t for n, t in tensors.items() if weight_map[n] == f}, path / f, metadata={"format": "pt"})
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        (path / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
        )
    cfg = {
        "architectures": ["LlamaForCausalLM" if family == "llama" else "Qwen2ForCausalLM"],
        "model_type": family,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 128,
        "hidden_act": "silu",
        "torch_dtype": dtype,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    cfg.update(config_extra or {})
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    return path


def read_st_dir(path) -> dict[str, tuple[str, tuple, bytes]]:
    """name -> (dtype, shape, raw bytes) for every tensor of every safetensors file in ``path``."""
    import torch
    from safetensors import safe_open

    out = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        with safe_open(f, framework="pt") as h:
            for k in h.keys():
                t = h.get_tensor(k)
                out[k] = (str(t.dtype), tuple(t.shape), t.contiguous().view(torch.uint8).numpy().tobytes())
    return out


def listing(parent) -> list[str]:
    """Everything in ``parent`` (hidden files too), to assert nothing was left behind."""
    return sorted(p.name for p in Path(parent).iterdir())
