"""The DeepSeek-V3 family (DeepSeek-V3 / V3.1 / R1, ``DeepseekV3ForCausalLM``, and DeepSeek's released FP8
checkpoints), declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 96,
    "moe_intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 24,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8,
    "v_head_dim": 12,
    "first_k_dense_replace": 1,
    "n_routed_experts": 8,
    "num_experts_per_tok": 3,
    "n_group": 4,
    "topk_group": 2,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

FAMILY = Family(
    name="deepseek3",
    model_names=("deepseek3", "deepseek_v3", "deepseek-v3", "deepseek-r1", "deepseek_r1"),
    hf_architectures=("DeepseekV3ForCausalLM",),
    hf_model_types=("deepseek_v3",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "deepseek3_config.DeepSeek3Config",
        "model": "deepseek3_model.DeepSeek3ForCausalLM",
        "tokenizer_fast": "deepseek3_tokenizer.DeepSeek3TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*l2q_proj|.*q_proj|.*lkv2kv|.*wo",
    reference=Reference(
        model="transformers:DeepseekV3ForCausalLM",
        config="transformers:DeepseekV3Config",
        tiny={
            # V3 layout: sigmoid + correction bias, best 2 of 4 groups, renormalised and scaled top-3, yarn rope with
            # the softmax mscale, interleaved-pairs rotary
            "v3_yarn": {
                **_TINY,
                "routed_scaling_factor": 2.5,
                "norm_topk_prob": True,
                "rope_scaling": {
                    "rope_type": "yarn",
                    "factor": 4.0,
                    "original_max_position_embeddings": 64,
                    "beta_fast": 32,
                    "beta_slow": 1,
                    "mscale": 1.0,
                    "mscale_all_dim": 1.0,
                },  # fmt: skip
            },
            # half-split rotary, no renormalisation, two shared experts, attention biases, tied embeddings
            "half_rope_tied": {
                **_TINY,
                "rope_interleave": False,
                "norm_topk_prob": False,
                "routed_scaling_factor": 1.0,
                "n_shared_experts": 2,
                "attention_bias": True,
                "tie_word_embeddings": True,
            },
        },
        prepare="reference:random_correction_bias",
    ),
    options=("mcore",),
)
