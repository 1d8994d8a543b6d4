"""The Qwen3 family (dense Qwen3; HF ``Qwen3ForCausalLM``): what this folder serves, declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# ChatML, the layout of Qwen's chat models (Qwen3 adds no default system turn), for tokenizers that carry no chat
# template of their own; the model's own template (thinking blocks, tools) comes with its tokenizer_config.json.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# token ids inside the tiny vocabulary (the YAMLs' Qwen ids, 151643..., lie outside it)
_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 256,
    "rope_theta": 1000000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

FAMILY = Family(
    name="qwen3",
    model_names=("qwen3",),
    hf_architectures=("Qwen3ForCausalLM",),
    hf_model_types=("qwen3",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "qwen3_config.Qwen3Config",
        "model": "qwen3_model.Qwen3ForCausalLM",
        "tokenizer": "qwen3_tokenizer.Qwen3Tokenizer",
        "tokenizer_fast": "qwen3_tokenizer.Qwen3TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=CHATML_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:Qwen3ForCausalLM",
        config="transformers:Qwen3Config",
        tiny={
            # explicit head_dim 32 != hidden / heads (16), as in the real Qwen3 sizes
            "gqa_tied_head_dim": {**_TINY, "num_key_value_heads": 2, "head_dim": 32, "tie_word_embeddings": True},
            "mha_untied_bias": {
                **_TINY,
                "num_key_value_heads": 4,
                "head_dim": 16,
                "attention_bias": True,
                "tie_word_embeddings": False,
            },
        },
    ),
    options=("qkv_concat",),
)
