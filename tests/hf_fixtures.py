"""Tiny random HuggingFace checkpoints, built on the fly (no network).

Shared by every test that needs an independent reference model: conversion, model parity, finetune.
"""

from __future__ import annotations

import json
from pathlib import Path

LLAMA31_ROPE_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


def make_hf_llama(
    path: str | Path,
    *,
    vocab_size: int = 256,
    hidden_size: int = 64,
    intermediate_size: int = 160,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    tie_word_embeddings: bool = False,
    rope_scaling: dict | None = None,
    rope_theta: float = 500000.0,
    rms_norm_eps: float = 1e-5,
    max_position_embeddings: int = 1024,
    dtype: str = "float32",
    seed: int = 0,
    max_shard_size: str | None = None,
    safe_serialization: bool = True,
) -> Path:
    """Save a random ``LlamaForCausalLM`` with the given shape to ``path`` and return ``path``.

    ``max_shard_size`` (e.g. ``"20KB"``) produces a sharded checkpoint with ``model.safetensors.index.json``.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        tie_word_embeddings=tie_word_embeddings,
        rope_scaling=rope_scaling,
        rope_theta=rope_theta,
        rms_norm_eps=rms_norm_eps,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(cfg).eval()
    # Random init of HF leaves norms at exactly 1.0; perturb them so a dropped/mis-mapped norm shows in logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model = model.to(getattr(torch, dtype))
    path = Path(path)
    kwargs = {"safe_serialization": safe_serialization}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(path, **kwargs)
    return path


def make_hf_qwen2(
    path: str | Path,
    *,
    vocab_size: int = 256,
    hidden_size: int = 64,
    intermediate_size: int = 160,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    tie_word_embeddings: bool = True,
    dtype: str = "float32",
    seed: int = 0,
    max_shard_size: str | None = None,
) -> Path:
    """Save a random ``Qwen2ForCausalLM`` (q/k/v biases, tied embeddings by default) to ``path``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        tie_word_embeddings=tie_word_embeddings,
        max_position_embeddings=1024,
        attn_implementation="eager",
    )
    model = Qwen2ForCausalLM(cfg).eval().to(getattr(torch, dtype))
    path = Path(path)
    kwargs = {}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(path, **kwargs)
    return path


def read_hf_config(path: str | Path) -> dict:
    return json.loads((Path(path) / "config.json").read_text())
