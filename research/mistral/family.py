"""The Mistral family (Mistral 7B v0.1-v0.3, Mistral-Nemo-style explicit head_dim): what this folder serves.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# Mistral's instruct format, for tokenizers that carry no chat template of their own (mf-ext data)
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)

# pad_token_id set: the YAML's pad id must lie inside a tiny vocabulary
_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="mistral",
    model_names=("mistral",),
    hf_architectures=("MistralForCausalLM",),
    hf_model_types=("mistral",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "mistral_config.MistralConfig",
        "model": "mistral_model.MistralForCausalLM",
        "tokenizer": "mistral_tokenizer.MistralTokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=MISTRAL_CHAT_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:MistralForCausalLM",
        config="transformers:MistralConfig",
        tiny={
            # window 8 < prompt (10) + 32 generated tokens: the window decides the logits and every decode step.
            # One configuration (test time); tests/research/mistral checks MQA + tied head + explicit head_dim logits.
            "gqa_window8": {**_TINY, "num_key_value_heads": 2, "sliding_window": 8, "rope_theta": 1e6},
        },
    ),
)
