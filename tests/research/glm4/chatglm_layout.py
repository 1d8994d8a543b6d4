"""THUDM's remote-code ChatGLM checkpoint layout, synthesised from an HF ``GlmForCausalLM`` (the native twin).

Written from the layout of ``modeling_chatglm.py`` / ``configuration_chatglm.py`` of THUDM's hub repositories
(https://huggingface.co/THUDM/glm-4-9b-chat/blob/main/modeling_chatglm.py; ``chatglm2-6b`` / ``chatglm3-6b`` have
the same tensor layout), never from our weight spec:

* ``ChatGLMModel``: ``transformer.embedding.word_embeddings`` (``nn.Embedding(padded_vocab_size, hidden)``),
  ``transformer.rotary_pos_emb.inv_freq`` (a persistent buffer of ``RotaryEmbedding(kv_channels // 2)``:
  ``1 / 10000 ** (arange(0, dim, 2) / dim)``; ``rope_ratio`` scales the base only in ``forward``),
  ``transformer.encoder.layers.{L}`` (``GLMBlock``), ``transformer.encoder.final_layernorm`` (RMSNorm),
  ``transformer.output_layer`` (``nn.Linear(hidden, padded_vocab_size, bias=False)``).
* ``GLMBlock``: ``input_layernorm``, ``self_attention``, ``post_attention_layernorm``, ``mlp``.
* ``SelfAttention`` with ``multi_query_attention``: ``query_key_value`` = ``nn.Linear(hidden, np*hn + 2*ng*hn,
  bias=add_qkv_bias)`` whose output ``forward`` splits along the last dim as ``[np*hn | ng*hn | ng*hn]`` =
  ``[q | k | v]``; ``dense`` = ``nn.Linear(np*hn, hidden, bias=add_bias_linear)``. Rotary (``apply_rotary_pos_emb``)
  rotates the first ``rope_cache.shape[-2] * 2 = kv_channels // 2`` channels as interleaved pairs
  ``(x[2i], x[2i+1])`` -- what HF's GLM computes with ``partial_rotary_factor`` 0.5, so q/k rows are taken as they are.
* ``MLP``: ``dense_h_to_4h`` = ``nn.Linear(hidden, 2*ffn_hidden_size)`` whose output ``swiglu`` chunks in two,
  ``silu(x[0]) * x[1]`` = ``[gate | up]``; ``dense_4h_to_h``.
* ``config.json``: ``model_type: chatglm``, ``num_layers``, ``padded_vocab_size``, ``ffn_hidden_size``,
  ``kv_channels``, ``multi_query_group_num``, ``layernorm_epsilon``, ``rope_ratio`` (base = ``10000 * rope_ratio``),
  ``add_qkv_bias``, ``seq_length``.
"""

from __future__ import annotations

import numpy as np


def to_chatglm(state: dict[str, np.ndarray], hf: dict) -> tuple[dict[str, np.ndarray], dict]:
    """An HF ``GlmForCausalLM`` state dict + config dict -> the ChatGLM state dict + ``config.json`` dict."""
    heads, layers = hf["num_attention_heads"], hf["num_hidden_layers"]
    head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    assert hf.get("partial_rotary_factor", 0.5) == 0.5, "ChatGLM rotates exactly half of each head"
    out = {
        "transformer.embedding.word_embeddings.weight": state["model.embed_tokens.weight"],
        "transformer.encoder.final_layernorm.weight": state["model.norm.weight"],
        "transformer.output_layer.weight": state.get("lm_head.weight", state["model.embed_tokens.weight"]),
    }
    dim = head_dim // 2
    out["transformer.rotary_pos_emb.inv_freq"] = (
        1.0 / 10000 ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim))
    ).astype(np.float32)
    for i in range(layers):
        h, t = f"model.layers.{i}.", f"transformer.encoder.layers.{i}."
        a = h + "self_attn."
        out[t + "input_layernorm.weight"] = state[h + "input_layernorm.weight"]
        out[t + "post_attention_layernorm.weight"] = state[h + "post_attention_layernorm.weight"]
        out[t + "self_attention.query_key_value.weight"] = np.concatenate(
            [state[a + "q_proj.weight"], state[a + "k_proj.weight"], state[a + "v_proj.weight"]], axis=0
        )
        if a + "q_proj.bias" in state:
            out[t + "self_attention.query_key_value.bias"] = np.concatenate(
                [state[a + "q_proj.bias"], state[a + "k_proj.bias"], state[a + "v_proj.bias"]], axis=0
            )
        out[t + "self_attention.dense.weight"] = state[a + "o_proj.weight"]
        out[t + "mlp.dense_h_to_4h.weight"] = state[h + "mlp.gate_up_proj.weight"]  # HF: gate, up = chunk(2)
        out[t + "mlp.dense_4h_to_h.weight"] = state[h + "mlp.down_proj.weight"]
    config = {
        "architectures": ["ChatGLMModel"],
        "model_type": "chatglm",
        "add_bias_linear": False,
        "add_qkv_bias": bool(hf.get("attention_bias", True)),
        "apply_query_key_layer_scaling": True,
        "apply_residual_connection_post_layernorm": False,
        "attention_dropout": 0.0,
        "attention_softmax_in_fp32": True,
        "ffn_hidden_size": hf["intermediate_size"],
        "fp32_residual_connection": False,
        "hidden_dropout": 0.0,
        "hidden_size": hf["hidden_size"],
        "kv_channels": head_dim,
        "layernorm_epsilon": hf["rms_norm_eps"],
        "multi_query_attention": True,
        "multi_query_group_num": hf["num_key_value_heads"],
        "num_attention_heads": heads,
        "num_layers": layers,
        "original_rope": True,
        "padded_vocab_size": hf["vocab_size"],
        "post_layer_norm": True,
        "rmsnorm": True,
        "rope_ratio": hf["rope_theta"] / 10000,
        "seq_length": hf["max_position_embeddings"],
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "eos_token_id": hf.get("eos_token_id"),
        "pad_token_id": hf.get("pad_token_id"),
    }
    return out, config


def chatglm_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a ChatGLM checkpoint (``ChatGLMForConditionalGeneration.state_dict()``) for a ChatGLM
    ``config.json`` dict, per the layout above (``inv_freq`` included)."""
    hidden, heads, groups = cfg["hidden_size"], cfg["num_attention_heads"], cfg["multi_query_group_num"]
    hn, ffn, vocab = cfg["kv_channels"], cfg["ffn_hidden_size"], cfg["padded_vocab_size"]
    out = {
        "transformer.embedding.word_embeddings.weight": (vocab, hidden),
        "transformer.rotary_pos_emb.inv_freq": (hn // 4,),
        "transformer.encoder.final_layernorm.weight": (hidden,),
        "transformer.output_layer.weight": (vocab, hidden),
    }
    for i in range(cfg["num_layers"]):
        t = f"transformer.encoder.layers.{i}."
        out[t + "input_layernorm.weight"] = (hidden,)
        out[t + "post_attention_layernorm.weight"] = (hidden,)
        out[t + "self_attention.query_key_value.weight"] = (heads * hn + 2 * groups * hn, hidden)
        if cfg.get("add_qkv_bias", True):
            out[t + "self_attention.query_key_value.bias"] = (heads * hn + 2 * groups * hn,)
        out[t + "self_attention.dense.weight"] = (hidden, heads * hn)
        out[t + "mlp.dense_h_to_4h.weight"] = (2 * ffn, hidden)
        out[t + "mlp.dense_4h_to_h.weight"] = (hidden, ffn)
    return out
