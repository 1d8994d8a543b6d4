"""The GPT2 family (OpenAI GPT2 small/medium/large/xl and GPT2-architecture checkpoints): what this folder serves.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {
    "vocab_size": 256,
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="gpt2",
    model_names=("gpt2", "gpt"),
    hf_architectures=("GPT2LMHeadModel",),
    hf_model_types=("gpt2",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "gpt2_config.GPT2LMConfig",
        "model": "gpt2_model.GPT2ForCausalLM",
        "tokenizer": "gpt2_tokenizer.GPT2BPETokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    lora_targets=".*w_qkv|.*wo",
    reference=Reference(
        model="transformers:GPT2LMHeadModel",
        config="transformers:GPT2Config",
        tiny={
            # one configuration (test time); tests/research/gpt2 checks an untied head, n_inner and erf GELU
            "tied_gelu_new": {**_TINY, "n_positions": 128},
        },
    ),
)
