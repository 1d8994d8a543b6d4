"""What changes between Llama 2 and Llama 3 / 3.1 in a MindFormers YAML: the migration's data.

Each preset lists the values the migration owns under ``model.model_config``; everything else in a user's YAML
(learning rate, batch size, parallel layout, paths, dtypes, comments) is left alone. Values are those of Meta's
published ``config.json`` files for each model (also the values in MindFormers' own ``research/llama3_1`` YAMLs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DELETE = object()  # marker: the key must not be present after migration

# Llama 3.1 RoPE frequency scaling (HF ``rope_scaling`` with ``rope_type: llama3``).
LLAMA31_ROPE_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

# Llama 3 shares one tiktoken vocabulary: these three ids are the text markers below.
LLAMA3_SPECIAL_TOKENS = {
    "bos_token": "<|begin_of_text|>",  # id 128000
    "eos_token": "<|end_of_text|>",  # id 128001
    "pad_token": "<|reserved_special_token_0|>",  # id 128002
}

# The plug-in classes the migrated YAML points at (resolved in the folder given by --register_path).
PLUGIN_CLASSES = {
    ("model", "model_config"): ("Llama3Config", "llama3_1_config.Llama3Config"),
    ("model", "arch"): ("Llama3ForCausalLM", "llama3_1_model.Llama3ForCausalLM"),
    ("processor", "tokenizer"): ("Llama3Tokenizer", "llama3_1_tokenizer.Llama3Tokenizer"),
}

# MindFormers' built-in model names of Llama 2: `checkpoint_name_or_path` naming one would load Llama 2 weights.
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


@dataclass(frozen=True)
class Preset:
    """A migration target: the model_config values it owns and its MindFormers-style model name."""

    name: str
    description: str
    model_config: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "llama3_8b": Preset("llama3_8b", "Llama 3 8B", {**_LLAMA3_COMMON}),
    "llama3_1_8b": Preset("llama3_1_8b", "Llama 3.1 8B", {**_LLAMA3_COMMON, **_LLAMA31}),
    "llama3_70b": Preset("llama3_70b", "Llama 3 70B", {**_LLAMA3_COMMON, **_70B}),
    "llama3_1_70b": Preset("llama3_1_70b", "Llama 3.1 70B", {**_LLAMA3_COMMON, **_LLAMA31, **_70B}),
}

# Where a key that is missing from the user's model_config is inserted: after the first of these that exists.
INSERT_AFTER: dict[str, tuple[str, ...]] = {
    "n_kv_heads": ("num_heads", "num_layers", "hidden_size"),
    "intermediate_size": ("vocab_size", "n_kv_heads", "num_heads"),
    "max_position_embedding": ("seq_length",),
    "theta": ("rms_norm_eps", "ignore_token_id", "pad_token_id"),
    "rope_scaling": ("theta", "rms_norm_eps"),
    "vocab_size": ("n_kv_heads", "num_heads"),
    "auto_register": ("type",),
}
