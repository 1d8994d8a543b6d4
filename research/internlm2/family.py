"""The InternLM2 family (InternLM2 / InternLM2.5, and InternLM): what this folder serves, declared once.

Both checkpoint formats are remote code on the Hub; the parity reference is their exact native twin, HF
``LlamaForCausalLM``, re-packed into the remote layout by ``reference.to_internlm2`` (see reference.py for sources).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# InternLM2-chat's prompt format (the tokenizer_config.json of internlm/internlm2-chat-7b)
INTERNLM2_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_TINY = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "pad_token_id": 0,
         "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip

FAMILY = Family(
    name="internlm2",
    model_names=("internlm2", "internlm2_5", "internlm"),
    hf_architectures=("InternLM2ForCausalLM", "InternLMForCausalLM"),
    hf_model_types=("internlm2", "internlm"),
    specs={"hf": "weight_map:SPEC"},
    classes={
        "config": "internlm2_config.InternLM2Config",
        "model": "internlm2_model.InternLM2ForCausalLM",
        "tokenizer": "internlm2_tokenizer.InternLM2Tokenizer",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=INTERNLM2_CHAT_TEMPLATE,
    lora_targets=".*wq|.*wk|.*wv|.*wo",
    reference=Reference(
        model="transformers:LlamaForCausalLM",
        config="transformers:LlamaConfig",
        tiny={
            # InternLM2 layout: GQA (4 query heads per key/value head); dynamic NTK rescales past 8 positions, so the
            # 10-token prompt's logits already depend on it
            "internlm2_gqa_dynamic": {
                **_TINY,
                "num_attention_heads": 8,
                "num_key_value_heads": 2,
                "max_position_embeddings": 8,
                "rope_theta": 10000.0,
                "rope_scaling": {"rope_type": "dynamic", "factor": 8.0},
            },
            # InternLM layout (Llama names) with biases on q/k/v/o
            "internlm_bias": {**_TINY, "num_attention_heads": 4, "num_key_value_heads": 4, "attention_bias": True},
        },
        to_format="reference:to_internlm2",
    ),
    options=("qkv_concat",),
)
