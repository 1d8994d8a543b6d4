"""The Qwen2 family (Qwen2 / Qwen2.5): converters only for now -- no MindSpore model class in this folder yet.

Read by mf-ext's registry without importing MindSpore (see mf_ext/family.py for the contract). Its parity reference
is HF transformers' ``Qwen2ForCausalLM``: the plug-in conversion tests take their HF names and shapes from it.
"""

from mf_ext.family import Family, Reference

_TINY = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2}

FAMILY = Family(
    name="qwen2",
    model_names=("qwen2", "qwen2_5", "qwen2.5"),
    hf_architectures=("Qwen2ForCausalLM",),
    hf_model_types=("qwen2",),
    specs={"hf": "weight_map:SPEC"},
    reference=Reference(
        model="transformers:Qwen2ForCausalLM",
        config="transformers:Qwen2Config",
        tiny={
            "gqa_tied": {**_TINY, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": True},
            "mha_untied": {**_TINY, "num_attention_heads": 4, "num_key_value_heads": 4, "tie_word_embeddings": False},
        },
    ),
    options=("qkv_concat",),
)
