"""The Baichuan2 family (Baichuan2-7B / -13B, Base and Chat): what this folder serves, declared once.

The checkpoint format is remote code on the Hub. The parity reference is Baichuan2-7B's exact native twin, HF
``LlamaForCausalLM`` with unit-norm ``lm_head`` rows (``reference.normalize_head``), re-packed into Baichuan2's
layout by ``reference.to_baichuan2`` (sources in reference.py). Baichuan2-13B's ALiBi has no native twin in
transformers; tests/research/baichuan2/test_alibi.py checks it against a torch implementation of Baichuan2-13B's
formulas written in the test.
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# Baichuan2-Chat's prompt format (generation_utils.py: user_token_id 195 "<reserved_106>", assistant 196
# "<reserved_107>")
BAICHUAN2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<reserved_106>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<reserved_107>' + message['content'] + eos_token }}"
    "{% else %}{{ message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<reserved_107>' }}{% endif %}"
)

FAMILY = Family(
    name="baichuan2",
    model_names=("baichuan2", "baichuan2_7b", "baichuan2_13b"),
    hf_architectures=("BaichuanForCausalLM",),
    hf_model_types=("baichuan",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "baichuan2_config.Baichuan2Config",
        "model": "baichuan2_model.Baichuan2ForCausalLM",
        "tokenizer": "baichuan2_tokenizer.Baichuan2Tokenizer",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=BAICHUAN2_CHAT_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:LlamaForCausalLM",
        config="transformers:LlamaConfig",
        tiny={
            "7b_rope_normhead": {
                "vocab_size": 256,
                "hidden_size": 64,
                "intermediate_size": 160,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 4,
                "max_position_embeddings": 256,
                "rms_norm_eps": 1e-6,
                "pad_token_id": 0,
                "bos_token_id": 1,
                "eos_token_id": 2,
            },
        },
        to_format="reference:to_baichuan2",
        prepare="reference:normalize_head",
    ),
    options=("qkv_concat",),
)
