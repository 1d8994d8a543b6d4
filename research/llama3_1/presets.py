"""Migration presets of the Llama family: what changes between a Llama 2 YAML and Llama 3 / 3.1 (``mf-ext migrate
--config X --to llama3_1_8b``).

Each preset lists the values the migration owns under ``model.model_config``; everything else in a user's YAML
(learning rate, batch size, parallel layout, paths, dtypes, comments) is left alone. Values are those of Meta's
published ``config.json`` files for each model (also the values in MindFormers' own ``research/llama3_1`` YAMLs).
The migration engine (:mod:`mf_ext.migrate.migrate`) applies them generically; declared in ``family.py`` as
``presets="presets:PRESETS"``. Plain data: importing this file imports no MindSpore.
"""

from __future__ import annotations

from typing import Any

from mf_ext.migrate.presets import DELETE, Preset

# Llama 3.1 RoPE frequency scaling (HF ``rope_scaling`` with ``rope_type: llama3``).
LLAMA31_ROPE_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

# Llama 3 shares one tiktoken vocabulary: these three ids are the text markers below. Llama 2's SentencePiece
# markers (and its unknown token) do not exist in it.
LLAMA3_TOKENIZER = {
    "unk_token": DELETE,
    "bos_token": "<|begin_of_text|>",  # id 128000
    "eos_token": "<|end_of_text|>",  # id 128001
    "pad_token": "<|reserved_special_token_0|>",  # id 128002
}

# MindFormers' built-in model names of Llama 2: `checkpoint_name_or_path` naming one would make MindFormers fetch
# Llama 2 weights into the Llama 3 network.
LLAMA2_BUILTIN_NAMES = frozenset(
    {"llama2_7b", "llama2_13b", "llama2_70b", "llama2_7b_lora", "llama2_13b_lora", "llama_7b", "llama_13b"}
)

_LLAMA3_COMMON: dict[str, Any] = {
    "seq_length": 8192,
    "n_kv_heads": 8,
    "vocab_size": 128256,
    "intermediate_size": 14336,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "pad_token_id": 128002,
    "theta": 500000.0,
    "max_position_embedding": 8192,
    "rope_scaling": DELETE,
}
_LLAMA31: dict[str, Any] = {"max_position_embedding": 131072, "rope_scaling": LLAMA31_ROPE_SCALING}
_70B: dict[str, Any] = {"hidden_size": 8192, "num_layers": 80, "num_heads": 64, "intermediate_size": 28672}

_NOTES = {
    "processor.tokenizer.vocab_file": "processor.tokenizer.vocab_file is still {value!r}: point it at the Llama 3 "
    "tokenizer.model (tiktoken BPE file), not Llama 2's SentencePiece model",
    "load_checkpoint": "load_checkpoint is still {value!r}: Llama 2 weights do not fit Llama 3",
}


def _preset(name: str, description: str, model_config: dict[str, Any]) -> Preset:
    return Preset(
        name=name,
        description=description,
        model_config=model_config,
        tokenizer=LLAMA3_TOKENIZER,
        clear_checkpoint_names=LLAMA2_BUILTIN_NAMES,
        model_name_prefixes=("llama2", "llama_"),
        notes=_NOTES,
    )


PRESETS: dict[str, Preset] = {
    "llama3_8b": _preset("llama3_8b", "Llama 3 8B", {**_LLAMA3_COMMON}),
    "llama3_1_8b": _preset("llama3_1_8b", "Llama 3.1 8B", {**_LLAMA3_COMMON, **_LLAMA31}),
    "llama3_70b": _preset("llama3_70b", "Llama 3 70B", {**_LLAMA3_COMMON, **_70B}),
    "llama3_1_70b": _preset("llama3_1_70b", "Llama 3.1 70B", {**_LLAMA3_COMMON, **_LLAMA31, **_70B}),
}
