"""The parity reference's checkpoint in Baichuan2's own layout, synthesised from its exact native twin.

Baichuan2 has no transformers class (remote code on the Hub). Baichuan2-7B is Llama's architecture exactly except
for its output head, so the parity test builds HF ``LlamaForCausalLM`` (multi-head, rotary base 10000), makes its
``lm_head`` rows unit-norm (:func:`normalize_head`, ``Reference.prepare``) and re-packs its state dict with
:func:`to_baichuan2`. Written from Baichuan2's modeling code, never from this folder's weight spec --
``modeling_baichuan.py`` of https://huggingface.co/baichuan-inc/Baichuan2-7B-Base:

* ``BaichuanAttention``: ``W_pack = nn.Linear(hidden, 3 * hidden, bias=False)``; its forward does
  ``proj.unflatten(-1, (3, hidden))`` and takes ``proj[0]`` / ``[1]`` / ``[2]`` as query / key / value: the rows of
  ``W_pack`` are q's, then k's, then v's. ``o_proj``; ``RotaryEmbedding(head_dim, max_position_embeddings)`` with its
  default base 10000 and rotate-half application, as Llama.
* ``MLP``: ``down_proj(act(gate_proj(x)) * up_proj(x))``; ``BaichuanLayer``: ``input_layernorm``, ``self_attn``,
  ``post_attention_layernorm``, ``mlp``; ``BaichuanModel``: ``embed_tokens``, ``layers``, ``norm``.
* ``NormHead``: ``weight`` of shape ``(vocab, hidden)``; the forward uses ``nn.functional.normalize(self.weight)``
  (rows L2-normalised; in eval mode once, on the first call). The checkpoint holds the raw weight, so any positive
  scale of a row gives the same logits: :func:`to_baichuan2` stores the twin's unit rows times a random positive
  factor per row, and a model that skipped the normalisation fails parity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_head", "to_baichuan2"]


def normalize_head(model) -> None:
    """``Reference.prepare``: the twin's ``lm_head`` rows made unit-norm in place (what NormHead computes)."""
    import torch

    with torch.no_grad():
        w = model.lm_head.weight
        w.copy_(torch.nn.functional.normalize(w, dim=-1))


def to_baichuan2(sd: dict[str, np.ndarray], cfg: dict) -> tuple[dict[str, np.ndarray], dict]:
    """HF ``LlamaForCausalLM`` state dict + config dict -> (Baichuan2 checkpoint tensors, config.json)."""
    heads = cfg["num_attention_heads"]
    if cfg.get("num_key_value_heads", heads) != heads:
        raise ValueError("to_baichuan2: Baichuan2 is multi-head (num_key_value_heads must equal num_attention_heads)")
    if cfg.get("attention_bias") or cfg.get("mlp_bias") or cfg.get("tie_word_embeddings"):
        raise ValueError("to_baichuan2: Baichuan2 has no biases and an untied NormHead")
    if float(cfg.get("rope_theta", 10000.0)) != 10000.0 or cfg.get("rope_scaling"):
        raise ValueError("to_baichuan2: Baichuan2-7B's rotary base is 10000, unscaled")
    scale = np.random.RandomState(0).uniform(0.5, 3.0, (cfg["vocab_size"], 1)).astype(np.float32)
    out = {
        "model.embed_tokens.weight": sd["model.embed_tokens.weight"],
        "model.norm.weight": sd["model.norm.weight"],
        "lm_head.weight": sd["lm_head.weight"] * scale.astype(sd["lm_head.weight"].dtype),
    }
    for i in range(cfg["num_hidden_layers"]):
        a, m, o = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp.", f"model.layers.{i}."
        out[a + "W_pack.weight"] = np.concatenate(
            [sd[a + "q_proj.weight"], sd[a + "k_proj.weight"], sd[a + "v_proj.weight"]], axis=0
        )
        out[a + "o_proj.weight"] = sd[a + "o_proj.weight"]
        for name in ("gate_proj", "up_proj", "down_proj"):
            out[m + name + ".weight"] = sd[m + name + ".weight"]
        for name in ("input_layernorm", "post_attention_layernorm"):
            out[o + name + ".weight"] = sd[o + name + ".weight"]
    config = {
        "architectures": ["BaichuanForCausalLM"],
        "model_type": "baichuan",
        "hidden_act": "silu",
        "model_max_length": cfg["max_position_embeddings"],
        "z_loss_weight": 0,
        **{k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                               "vocab_size", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings",
                               "bos_token_id", "eos_token_id", "pad_token_id")},
    }  # fmt: skip
    return out, config
