"""Shared helpers for conversion tests: synthetic HF checkpoints written directly with safetensors (fast, any
shape, any dtype, any sharding) and exact byte-level readers."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LLAMA = REPO / "research" / "llama3_1"


def plugin(name: str):
    """The family serving model name ``name`` (``--model NAME``), from the registry: an unknown name is an error."""
    from mf_ext.registry import plugin_for_model

    return plugin_for_model(name)


def reference_config(family: str, *, layers, hidden, heads, kv_heads, head_dim, inter, vocab, tied, extra=None):
    """The family's reference HF config (``Family.reference.config``) for these sizes (standard HF field names)."""
    from tests.family_parity import import_object

    ref = plugin(family).family.reference
    kwargs = dict(
        num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim or hidden // heads, intermediate_size=inter, vocab_size=vocab, tie_word_embeddings=tied,
    )  # fmt: skip
    kwargs.update(extra or {})
    cfg = import_object(ref.config)(**kwargs)
    cfg.architectures = [import_object(ref.model).__name__]
    return cfg


def hf_shapes(family, layers, hidden, heads, kv_heads, head_dim, inter, vocab, tied) -> dict[str, tuple]:
    """Tensor name -> shape of the family's reference HF model (``Family.reference.model``) with these sizes, as
    ``save_pretrained`` writes it (tied weights left out), read from a model built on PyTorch's meta device: real
    sizes cost no memory, and the names are HF's, never derived from our spec."""
    import torch

    from tests.family_parity import import_object

    cfg = reference_config(
        family, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim, inter=inter,
        vocab=vocab, tied=tied,
    )  # fmt: skip
    with torch.device("meta"):
        model = import_object(plugin(family).family.reference.model)(cfg)
    tied_keys = set(getattr(model, "_tied_weights_keys", None) or ()) if tied else set()
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in tied_keys}


def hf_names(family: str, layers: int, tied: bool) -> list[str]:
    return list(hf_shapes(family, layers, 32, 4, 2, 8, 48, 96, tied))


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
    ref_cfg = reference_config(
        family, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim, inter=inter,
        vocab=vocab, tied=tied,
    )  # fmt: skip
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
        "architectures": ref_cfg.architectures,
        "model_type": ref_cfg.model_type,
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
