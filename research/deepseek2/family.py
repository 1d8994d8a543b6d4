"""The DeepSeek-V2 family (DeepSeek-V2 / V2-Chat and V2-Lite, ``DeepseekV2ForCausalLM``), declared once.

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
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 8,
    "v_head_dim": 12,
    "first_k_dense_replace": 1,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

FAMILY = Family(
    name="deepseek2",
    model_names=("deepseek2", "deepseek_v2", "deepseek-v2"),
    hf_architectures=("DeepseekV2ForCausalLM",),
    hf_model_types=("deepseek_v2",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "deepseek2_config.DeepSeek2Config",
        "model": "deepseek2_model.DeepSeek2ForCausalLM",
        "tokenizer_fast": "deepseek2_tokenizer.DeepSeek2TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*l2q_proj|.*q_proj|.*lkv2kv|.*wo",
    reference=Reference(
        model="transformers:DeepseekV2ForCausalLM",
        config="transformers:DeepseekV2Config",
        tiny={
            # V2-Lite layout: no query rank, greedy softmax top-2 of 8 experts, one shared expert, dense layer 0
            "lite_greedy": {
                **_TINY,
                "q_lora_rank": None,
                "n_routed_experts": 8,
                "num_experts_per_tok": 2,
                "n_shared_experts": 1,
                "topk_method": "greedy",
                "routed_scaling_factor": 1.5,
            },
            # V2 layout: query rank, group-limited greedy (best 2 of 4 groups), scaled weights, 2 shared experts,
            # attention biases, yarn rope, tied embeddings
            "v2_grouped_yarn": {
                **_TINY,
                "q_lora_rank": 24,
                "n_routed_experts": 8,
                "num_experts_per_tok": 3,
                "n_shared_experts": 2,
                "topk_method": "group_limited_greedy",
                "n_group": 4,
                "topk_group": 2,
                "routed_scaling_factor": 16.0,
                "attention_bias": True,
                "tie_word_embeddings": True,
                "rope_scaling": {
                    "type": "yarn",
                    "factor": 4.0,
                    "original_max_position_embeddings": 64,
                    "beta_fast": 32,
                    "beta_slow": 1,
                    "mscale": 0.707,
                    "mscale_all_dim": 0.707,
                },  # fmt: skip
            },
        },
    ),
    options=("mcore",),
)
