"""The Qwen2 family (Qwen1.5, Qwen2, Qwen2.5; HF ``Qwen2ForCausalLM``): what this folder serves, declared once.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# ChatML, the layout of Qwen's chat models, for tokenizers that carry no chat template of their own: a default system
# turn when the conversation has none, then <|im_start|>role\ncontent<|im_end|>\n per message.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# token ids inside the tiny vocabulary (the YAMLs' Qwen ids, 151643..., lie outside it)
_TINY = {
    "vocab_size": 256,
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
    name="qwen2",
    model_names=("qwen", "qwen1.5", "qwen1_5", "qwen2", "qwen2_5", "qwen2.5"),
    hf_architectures=("Qwen2ForCausalLM",),
    hf_model_types=("qwen2",),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "qwen2_config.Qwen2Config",
        "model": "qwen2_model.Qwen2ForCausalLM",
        "tokenizer": "qwen2_tokenizer.Qwen2Tokenizer",
        "tokenizer_fast": "qwen2_tokenizer.Qwen2TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=CHATML_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:Qwen2ForCausalLM",
        config="transformers:Qwen2Config",
        tiny={
            "mha_tied": {**_TINY, "hidden_size": 64, "num_key_value_heads": 4, "tie_word_embeddings": True},
            # head_dim 32 and yarn (Qwen2.5's long-context setting): its ramp falls inside the rotated channels
            "gqa_untied_yarn": {
                **_TINY,
                "hidden_size": 128,
                "num_key_value_heads": 2,
                "tie_word_embeddings": False,
                "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
            },
        },
    ),
    options=("qkv_concat",),
    mindformers_config="mindformers.models.llama.llama_config:LlamaConfig",
)
