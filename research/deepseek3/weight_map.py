"""DeepSeek-V3 / R1 weight mapping: HF names <-> MindFormers names, as data (both converters derive from ``SPEC``).

MindSpore layout: as DeepSeek-V2's (multi-head latent attention ``attention.q2l_proj`` / ``lq_norm`` / ``l2q_proj``
or ``q_proj``, ``kv2l`` / ``lkv_norm`` / ``lkv2kv``, ``wo``; dense SwiGLU ``feed_forward.w1/w3/w2`` in the first
``first_k_dense_replace`` layers; MoE layers with ``feed_forward.router.dense.weight``, routed experts stacked over
``{E}`` as ``feed_forward.ffn.w1/w3/w2`` ``(E, out, in)`` streamed one expert at a time, shared experts
``feed_forward.shared_experts.w1/w3/w2``) plus the router's ``feed_forward.router.e_score_correction_bias``
``(E,)``. Option ``mcore``: MindFormers mcore's flattened grouped-expert layout.

DeepSeek's released checkpoints:

- FP8: ``*.weight`` in float8_e4m3fn with ``*.weight_scale_inv`` float32 per 128x128 block
  (``quantization_config``); dequantised on the way in (``Fp8BlockDequant``), one way.
- The multi-token-prediction (MTP) module is stored as extra layers ``model.layers.{num_hidden_layers + i}``
  (``num_nextn_predict_layers`` of them: a full decoder layer plus ``enorm``/``hnorm``/``eh_proj``/
  ``shared_head``). It is dropped: it only drafts tokens for speculative decoding, HF's ``DeepseekV3ForCausalLM``
  does not load it either, and next-token logits do not depend on it.
"""

from __future__ import annotations

from mf_ext.convert.spec import (
    Drop,
    Fp8BlockDequant,
    Option,
    Rename,
    Spec,
    Stack,
    both,
    layers_below,
    layers_from,
    mcore_experts,
)

from .hf_config import to_hf_config as hf_config_from_ms

A = "model.layers.{L}.self_attn."
M = "model.layers.{L}.mlp."
X = M + "experts.{E}."
S = M + "shared_experts."
MA = "model.layers.{L}.attention."
MF = "model.layers.{L}.feed_forward."

MAIN = layers_below("num_hidden_layers")  # the decoder layers (MTP layers come after them)
MTP = layers_from("num_hidden_layers")
DENSE = layers_below("first_k_dense_replace")
SPARSE = both(layers_from("first_k_dense_replace"), MAIN)
UP, DOWN = ("moe_inter", "hidden"), ("hidden", "moe_inter")

MCORE = Option(
    default=False,
    detect=lambda names: any(n.endswith(".experts.weight1") for n in names),
    help="MindFormers mcore grouped-expert layout: mlp.experts.weight1 = per expert [w1^T | w3^T], weight2 = w2^T",
)

RULES = (
    Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop(
        "lm_head.weight",
        "tied to model.embed_tokens.weight (tie_word_embeddings)",
        when="tie_word_embeddings",
        same_as="model.embed_tokens.weight",
    ),
    # multi-head latent attention
    Rename(A + "q_proj.weight", MA + "q_proj.weight", ("q_out", "hidden"), unless="q_lora", layers=MAIN),
    Rename(A + "q_a_proj.weight", MA + "q2l_proj.weight", ("q_rank", "hidden"), when="q_lora", layers=MAIN),
    Rename(A + "q_a_proj.bias", MA + "q2l_proj.bias", ("q_rank",), when="q_lora+attention_bias", layers=MAIN),
    Rename(A + "q_a_layernorm.weight", MA + "lq_norm.weight", ("q_rank",), when="q_lora", layers=MAIN),
    Rename(A + "q_b_proj.weight", MA + "l2q_proj.weight", ("q_out", "q_rank"), when="q_lora", layers=MAIN),
    Rename(A + "kv_a_proj_with_mqa.weight", MA + "kv2l.weight", ("kv_a", "hidden"), layers=MAIN),
    Rename(A + "kv_a_proj_with_mqa.bias", MA + "kv2l.bias", ("kv_a",), when="attention_bias", layers=MAIN),
    Rename(A + "kv_a_layernorm.weight", MA + "lkv_norm.weight", ("kv_rank",), layers=MAIN),
    Rename(A + "kv_b_proj.weight", MA + "lkv2kv.weight", ("kv_out", "kv_rank"), layers=MAIN),
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "o_in"), layers=MAIN),
    Rename(A + "o_proj.bias", MA + "wo.bias", ("hidden",), when="attention_bias", layers=MAIN),
    Drop(A + "rotary_emb.inv_freq", "recomputed from rope_theta, not a weight"),
    # dense first-k layers
    Rename(M + "gate_proj.weight", MF + "w1.weight", ("inter", "hidden"), layers=DENSE),
    Rename(M + "up_proj.weight", MF + "w3.weight", ("inter", "hidden"), layers=DENSE),
    Rename(M + "down_proj.weight", MF + "w2.weight", ("hidden", "inter"), layers=DENSE),
    # MoE layers
    Rename(M + "gate.weight", MF + "router.dense.weight", ("experts", "hidden"), layers=SPARSE),
    Rename(M + "gate.e_score_correction_bias", MF + "router.e_score_correction_bias", ("experts",), layers=SPARSE),
    Stack(X + "gate_proj.weight", MF + "ffn.w1.weight", UP, unless="mcore", layers=SPARSE),
    Stack(X + "up_proj.weight", MF + "ffn.w3.weight", UP, unless="mcore", layers=SPARSE),
    Stack(X + "down_proj.weight", MF + "ffn.w2.weight", DOWN, unless="mcore", layers=SPARSE),
    *mcore_experts(
        X + "gate_proj.weight",
        X + "up_proj.weight",
        X + "down_proj.weight",
        "model.layers.{L}.mlp.experts.weight1",
        "model.layers.{L}.mlp.experts.weight2",
        up_shape=UP,
        down_shape=DOWN,
        when="mcore",
        layers=SPARSE,
    ),
    Rename(S + "gate_proj.weight", MF + "shared_experts.w1.weight", ("shared_inter", "hidden"), layers=SPARSE),
    Rename(S + "up_proj.weight", MF + "shared_experts.w3.weight", ("shared_inter", "hidden"), layers=SPARSE),
    Rename(S + "down_proj.weight", MF + "shared_experts.w2.weight", ("hidden", "shared_inter"), layers=SPARSE),
    Rename(
        "model.layers.{L}.input_layernorm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",), layers=MAIN
    ),  # fmt: skip
    Rename(
        "model.layers.{L}.post_attention_layernorm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",), layers=MAIN
    ),  # fmt: skip
    Drop(
        "model.layers.{L}.*",
        "multi-token-prediction (MTP) layer: drafts tokens for speculative decoding only; HF's "
        "DeepseekV3ForCausalLM does not load it and next-token logits do not depend on it",
        layers=MTP,
    ),
)


def dims(cfg: dict) -> dict[str, int]:
    heads = cfg["num_attention_heads"]
    nope, rope, v = cfg.get("qk_nope_head_dim", 128), cfg.get("qk_rope_head_dim", 64), cfg.get("v_head_dim", 128)
    kv_rank = cfg.get("kv_lora_rank", 512)
    moe_inter = cfg.get("moe_intermediate_size", 2048)
    return {
        # {L} also takes the MTP layers' indices (dropped by the rule above)
        "layers": cfg["num_hidden_layers"] + int(cfg.get("num_nextn_predict_layers") or 0),
        "hidden": cfg["hidden_size"],
        "heads": heads,
        "q_rank": cfg.get("q_lora_rank") or 0,
        "kv_rank": kv_rank,
        "kv_a": kv_rank + rope,
        "q_out": heads * (nope + rope),
        "kv_out": heads * (nope + v),
        "o_in": heads * v,
        "inter": cfg.get("intermediate_size", 18432),
        "moe_inter": moe_inter,
        "shared_inter": moe_inter * (cfg.get("n_shared_experts") or 1),
        "experts": cfg.get("n_routed_experts", 256),
        "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict[str, bool]:
    return {
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "q_lora": cfg.get("q_lora_rank", 1536) is not None,
        "attention_bias": bool(cfg.get("attention_bias", False)),
    }


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="deepseek3",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
    options={"mcore": MCORE},
    dequant=(Fp8BlockDequant(),),
)
