"""The Llama family (Llama 2 / 3 / 3.1, CodeLlama, Yi, DeepSeek-Coder): what this folder serves, declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# Meta's Llama 3 instruct layout, for tokenizers that carry no chat template of their own.
LLAMA3_CHAT_TEMPLATE = (
    "<|begin_of_text|>"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_TINY = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2}
_LLAMA31_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}

FAMILY = Family(
    name="llama3_1",
    model_names=("llama", "llama2", "llama3", "llama3_1", "codellama", "yi", "deepseek-coder", "deepseek_coder"),
    hf_architectures=("LlamaForCausalLM",),
    hf_model_types=("llama",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "llama3_1_config.Llama3Config",
        "model": "llama3_1_model.Llama3ForCausalLM",
        "tokenizer": "llama3_1_tokenizer.Llama3Tokenizer",
        "tokenizer_fast": "llama3_1_tokenizer.Llama3TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml", "demo": "predict_demo.yaml"},
    presets=None,
    chat_template=LLAMA3_CHAT_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:LlamaForCausalLM",
        config="transformers:LlamaConfig",
        tiny={
            # head_dim 64 puts rotary wavelengths inside llama3's smoothed band (head_dim 8 never reaches it)
            "gqa_llama3": {
                **_TINY,
                "hidden_size": 256,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "rope_scaling": _LLAMA31_ROPE,
                "rope_theta": 500000.0,
            },
            "mha_tied": {**_TINY, "num_attention_heads": 4, "num_key_value_heads": 4, "tie_word_embeddings": True},
            "mqa_untied": {**_TINY, "num_attention_heads": 4, "num_key_value_heads": 1},
        },
    ),
    options=("qkv_concat",),
    mindformers_config="mindformers.models.llama.llama_config:LlamaConfig",
)
