"""The GLM family (ChatGLM2, ChatGLM3, GLM-4): what this folder serves, declared once.

Reads two checkpoint layouts of one network: HF transformers' ``GlmForCausalLM`` (``THUDM/glm-4-9b-hf``) and THUDM's
remote-code ChatGLM (``chatglm2-6b``, ``chatglm3-6b``, ``glm-4-9b(-chat)``). Read by mf-ext's registry without
importing MindSpore (see mf_ext/family.py for the contract).
"""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

# GLM-4 chat layout ([gMASK]<sop> prefix, role tokens), for tokenizers that carry no chat template of their own.
GLM4_CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# pad/eos inside the tiny vocabulary (GLM-4's real ids, 151329..., lie outside it)
_TINY = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "eos_token_id": 2,
}

FAMILY = Family(
    name="glm4",
    model_names=("glm-n", "glm2", "glm3", "glm4", "chatglm2", "chatglm3"),
    hf_architectures=("GlmForCausalLM", "ChatGLMModel", "ChatGLMForConditionalGeneration"),
    hf_model_types=("glm", "chatglm"),
    specs={"hf": "weight_map:SPEC", "chatglm": "weight_map:CHATGLM_SPEC"},
    classes={
        "config": "glm4_config.Glm4Config",
        "model": "glm4_model.Glm4ForCausalLM",
        "tokenizer": "glm4_tokenizer.Glm4Tokenizer",
        "tokenizer_fast": "glm4_tokenizer.Glm4TokenizerFast",
    },
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml", "finetune": "finetune.yaml"},
    chat_template=GLM4_CHAT_TEMPLATE,
    lora_targets=".*query_key_value|.*self_attention.dense",
    reference=Reference(
        model="transformers:GlmForCausalLM",
        config="transformers:GlmConfig",
        tiny={
            # GLM-4's shape in small: 2 kv groups, head_dim 16 of which 8 rotate, q/k/v biases
            "gqa_bias": {**_TINY, "num_key_value_heads": 2, "head_dim": 16, "attention_bias": True},
            # MHA, head_dim 32 != hidden/heads, a quarter rotating, GLM-4-chat's base, no biases, tied head
            "mha_tied": {
                **_TINY,
                "num_key_value_heads": 4,
                "head_dim": 32,
                "partial_rotary_factor": 0.25,
                "rope_theta": 5000000.0,
                "attention_bias": False,
                "tie_word_embeddings": True,
            },
        },
    ),
)
