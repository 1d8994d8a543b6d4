"""The Mixtral family (Mixtral 8x7B / 8x22B and other ``MixtralForCausalLM`` checkpoints), declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="mixtral",
    model_names=("mixtral",),
    hf_architectures=("MixtralForCausalLM",),
    hf_model_types=("mixtral",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "mixtral_config.MixtralConfig",
        "model": "mixtral_model.MixtralForCausalLM",
        "tokenizer_fast": "mixtral_tokenizer.MixtralTokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:MixtralForCausalLM",
        config="transformers:MixtralConfig",
        tiny={
            # one case (test time): 4 experts, top-2 renormalised (Mixtral's routing), GQA, a sliding window that
            # covers the context (the windowed mask path). Tied embeddings and other top-k: the qwen*_moe cases and
            # tests/modules/test_moe_block.py.
            "gqa_top2_window": {
                **_TINY,
                "num_key_value_heads": 2,
                "num_local_experts": 4,
                "num_experts_per_tok": 2,
                "sliding_window": 256,
            },
        },
    ),
    options=("mcore",),
)
