"""The Qwen2-MoE family (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B and other ``Qwen2MoeForCausalLM`` checkpoints), declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 96,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "shared_expert_intermediate_size": 40,
    "max_position_embeddings": 256,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="qwen2_moe",
    model_names=("qwen2_moe", "qwen2-moe", "qwen1_5_moe"),
    hf_architectures=("Qwen2MoeForCausalLM",),
    hf_model_types=("qwen2_moe",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "qwen2_moe_config.Qwen2MoeConfig",
        "model": "qwen2_moe_model.Qwen2MoeForCausalLM",
        "tokenizer_fast": "qwen2_moe_tokenizer.Qwen2MoeTokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:Qwen2MoeForCausalLM",
        config="transformers:Qwen2MoeConfig",
        tiny={
            # one case (test time): layer 0 MoE with 4 experts, top-2 renormalised, and the shared expert with its
            # sigmoid gate; layer 1 dense (mlp_only_layers); q/k/v biases. qwen3_moe's case covers
            # decoder_sparse_step, tied embeddings and unnormalised top-k.
            "mlp_only_norm_shared": {
                **_TINY,
                "num_experts": 4,
                "num_experts_per_tok": 2,
                "norm_topk_prob": True,
                "mlp_only_layers": [1],
            },
        },
    ),
    options=("mcore",),
)
