"""The Qwen3-MoE family (Qwen3-30B-A3B, Qwen3-235B-A22B and other ``Qwen3MoeForCausalLM`` checkpoints), declared once.

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
    "head_dim": 32,
    "max_position_embeddings": 256,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="qwen3_moe",
    model_names=("qwen3_moe", "qwen3-moe"),
    hf_architectures=("Qwen3MoeForCausalLM",),
    hf_model_types=("qwen3_moe",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "qwen3_moe_config.Qwen3MoeConfig",
        "model": "qwen3_moe_model.Qwen3MoeForCausalLM",
        "tokenizer_fast": "qwen3_moe_tokenizer.Qwen3MoeTokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:Qwen3MoeForCausalLM",
        config="transformers:Qwen3MoeConfig",
        tiny={
            # one case (test time): layer 0 dense (decoder_sparse_step 2), layer 1 MoE with 8 experts, top-3 not
            # renormalised; q/k norm, q/k/v/o biases, tied embeddings. qwen2_moe's case covers mlp_only_layers and
            # norm_topk_prob, the unit test (tests/modules/test_moe_block.py) both routings.
            "sparse_step2_unnormed_tied_bias": {
                **_TINY,
                "num_experts": 8,
                "num_experts_per_tok": 3,
                "norm_topk_prob": False,
                "decoder_sparse_step": 2,
                "tie_word_embeddings": True,
                "attention_bias": True,
            },
        },
    ),
    options=("mcore",),
)
