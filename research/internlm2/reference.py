"""The parity reference's checkpoint in InternLM2's (or InternLM's) own layout, synthesised from its exact native twin.

Neither format has a transformers class (both are remote code on the Hub). Their architecture is Llama's exactly
(pre-norm RMSNorm blocks, GQA, SwiGLU, rotate-half rotary with dynamic-NTK/linear scaling as HF's Llama), so the
parity test builds HF ``LlamaForCausalLM`` with random weights and :func:`to_internlm2` re-packs its state dict into
the layout the remote code loads. Written from that remote code, never from this folder's weight spec:

* InternLM2 -- ``modeling_internlm2.py`` of https://huggingface.co/internlm/internlm2-chat-7b:
  ``InternLM2Attention`` holds ``wqkv = nn.Linear(hidden, (num_heads + 2 * num_key_value_heads) * head_dim,
  bias=config.bias)`` and ``wo`` (``bias=config.bias``); its forward rearranges the projection
  ``"b q (h gs d) -> b q h gs d"`` with ``gs = 2 + num_key_value_groups``, takes ``[..., :num_key_value_groups, :]``
  as the queries, ``[..., -2, :]`` as the key and ``[..., -1, :]`` as the value: for every key/value head ``h`` the
  rows are that group's query heads, then key head ``h``, then value head ``h``. ``InternLM2MLP``:
  ``w2(act(w1(x)) * w3(x))``. ``InternLM2DecoderLayer``: ``attention_norm``, ``attention``, ``ffn_norm``,
  ``feed_forward``. ``InternLM2Model``: ``tok_embeddings``, ``layers``, ``norm``; ``InternLM2ForCausalLM``: ``model``
  and ``output``. Config: ``model_type: internlm2``, ``bias``, ``rope_theta``, ``rope_scaling: {type, factor}``.
* InternLM -- ``modeling_internlm.py`` of https://huggingface.co/internlm/internlm-7b: HF Llama's module names
  (``self_attn.q_proj`` ... ``mlp.gate_proj`` ... ``input_layernorm`` ... ``lm_head``) with
  ``bias=config.bias`` on q/k/v/o; config ``model_type: internlm``. A twin built with ``attention_bias=True``
  (Llama's bias on q/k/v/o) is written in this layout.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_internlm2"]

_COPIED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
           "vocab_size", "rms_norm_eps", "rope_theta", "max_position_embeddings", "tie_word_embeddings",
           "bos_token_id", "eos_token_id", "pad_token_id")  # fmt: skip


def _config(cfg: dict, arch: str, model_type: str, bias: bool) -> dict:
    out = {"architectures": [arch], "model_type": model_type, "bias": bias, "hidden_act": "silu"}
    out.update({k: cfg[k] for k in _COPIED})
    rs = cfg.get("rope_scaling")
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    out["rope_scaling"] = None if kind in (None, "default") else {"type": kind, "factor": rs["factor"]}
    return out


def to_internlm2(sd: dict[str, np.ndarray], cfg: dict) -> tuple[dict[str, np.ndarray], dict]:
    """HF ``LlamaForCausalLM`` state dict + config dict -> (InternLM2 or InternLM checkpoint tensors, config.json)."""
    if cfg.get("mlp_bias"):
        raise ValueError("to_internlm2: InternLM has no MLP biases (mlp_bias must be False)")
    if cfg.get("attention_bias"):  # InternLM (v1): Llama names, biases on q/k/v/o
        return dict(sd), _config(cfg, "InternLMForCausalLM", "internlm", True)
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg["hidden_size"] // heads
    per_group = heads // kv
    out = {"model.tok_embeddings.weight": sd["model.embed_tokens.weight"], "model.norm.weight": sd["model.norm.weight"]}
    if not cfg.get("tie_word_embeddings"):
        out["output.weight"] = sd["lm_head.weight"]
    for i in range(cfg["num_hidden_layers"]):
        a, m, o = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp.", f"model.layers.{i}."
        hidden = sd[a + "q_proj.weight"].shape[1]
        q = sd[a + "q_proj.weight"].reshape(kv, per_group, head_dim, hidden)
        k = sd[a + "k_proj.weight"].reshape(kv, 1, head_dim, hidden)
        v = sd[a + "v_proj.weight"].reshape(kv, 1, head_dim, hidden)
        # per key/value head h: [its per_group query heads, key head h, value head h]  ("b q (h gs d)")
        out[o + "attention.wqkv.weight"] = np.concatenate([q, k, v], axis=1).reshape(-1, hidden)
        out[o + "attention.wo.weight"] = sd[a + "o_proj.weight"]
        out[o + "feed_forward.w1.weight"] = sd[m + "gate_proj.weight"]
        out[o + "feed_forward.w3.weight"] = sd[m + "up_proj.weight"]
        out[o + "feed_forward.w2.weight"] = sd[m + "down_proj.weight"]
        out[o + "attention_norm.weight"] = sd[o + "input_layernorm.weight"]
        out[o + "ffn_norm.weight"] = sd[o + "post_attention_layernorm.weight"]
    return out, _config(cfg, "InternLM2ForCausalLM", "internlm2", False)
