"""A Mistral-style family written as a folder only (what research/README.md walks through), for the tests that add
a family without editing mf_ext/.

The folder is self-contained: it imports only ``mf_ext`` (and MindSpore/MindFormers), never another family folder.
Its model and config code start as a *copy* of the Llama family's files with the classes renamed -- as a new family
folder written today would start (a Mistral is a Llama with sliding-window attention) -- and everything mf-ext needs
to know is declared in its ``family.py``: names, HF architecture, weight spec, HF-config mapping, classes, YAML,
LoRA targets and the independent reference (HF transformers' ``MistralForCausalLM``).

Sliding window: the model attends to the whole context, which equals sliding-window attention while the context fits
in the window; the mapping refuses a ``config.json`` whose window is shorter than its maximum positions.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LLAMA_DIR = REPO / "research" / "llama3_1"
PREFIX = "MistralLike"  # class names (MindFormers' registry is keyed by class name: no clash with Llama3*)

FAMILY_PY = '''
"""A Mistral-style family (test folder): Llama architecture, HF MistralForCausalLM checkpoints."""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {
    "vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 256, "pad_token_id": 0,
}

FAMILY = Family(
    name="mistral_like",
    model_names=("mistral_like",),
    hf_architectures=("MistralForCausalLM",),
    hf_model_types=("mistral",),
    specs={"hf": "weight_map:SPEC"},
    classes={"config": "mistral_like_config.MistralLikeConfig", "model": "mistral_like_model.MistralLikeForCausalLM"},
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml"},
    lora_targets=".*wq|.*wv",
    reference=Reference(
        model="transformers:MistralForCausalLM",
        config="transformers:MistralConfig",
        tiny={
            "gqa_no_window": {**_TINY, "num_key_value_heads": 2, "sliding_window": None},
            "window_covers_context": {**_TINY, "num_key_value_heads": 1, "sliding_window": 256, "rope_theta": 1e6},
        },
    ),
)
'''

HF_CONFIG_PY = '''
"""HF MistralForCausalLM config.json <-> model_config: Llama's mapping (copied beside it as _base_mapping.py) plus
Mistral's model_type and sliding window."""

from ._base_mapping import LLAMA3_ROPE_KEYS, normalize_rope_scaling  # noqa: F401 -- the config class imports them
from ._base_mapping import ARCH_KEYS
from . import _base_mapping as _base


def to_model_config(hf: dict) -> dict:
    if hf.get("model_type", "mistral") != "mistral":
        raise ValueError(f"config.json: model_type {hf.get('model_type')!r} is not 'mistral'")
    window, max_pos = hf.get("sliding_window"), hf.get("max_position_embeddings", 32768)
    if window is not None and window < max_pos:
        raise ValueError(
            f"config.json: sliding_window {window} < max_position_embeddings {max_pos}: this model attends to the "
            "whole context"
        )
    return _base.to_model_config({**hf, "model_type": "llama"})


def to_hf_config(mc: dict) -> dict:
    out = _base.to_hf_config(mc)
    out.update(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=None)
    return out


def check_model_config(mc: dict):
    return _base.check_model_config(mc)
'''

WEIGHT_MAP_PY = '''
"""HF MistralForCausalLM names <-> this folder's model (MindFormers' Llama names), as data."""

from mf_ext.convert.spec import Drop, Rename, Spec

from .hf_config import to_hf_config

A, M = "model.layers.{L}.self_attn.", "model.layers.{L}.mlp."
MA, MF = "model.layers.{L}.attention.", "model.layers.{L}.feed_forward."
UP = ("inter", "hidden")
RULES = (
    Rename("model.embed_tokens.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
    Drop("lm_head.weight", "tied", when="tie_word_embeddings", same_as="model.embed_tokens.weight"),
    Rename(A + "q_proj.weight", MA + "wq.weight", ("heads*head_dim", "hidden")),
    Rename(A + "k_proj.weight", MA + "wk.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "v_proj.weight", MA + "wv.weight", ("kv_heads*head_dim", "hidden")),
    Rename(A + "o_proj.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename(M + "gate_proj.weight", MF + "{GATE}.weight", UP),
    Rename(M + "up_proj.weight", MF + "{UP}.weight", UP),
    Rename(M + "down_proj.weight", MF + "w2.weight", ("hidden", "inter")),
    Rename("model.layers.{L}.input_layernorm.weight", "model.layers.{L}.attention_norm.weight", ("hidden",)),
    Rename("model.layers.{L}.post_attention_layernorm.weight", "model.layers.{L}.ffn_norm.weight", ("hidden",)),
)


def dims(cfg: dict) -> dict:
    heads = cfg["num_attention_heads"]
    return {
        "layers": cfg["num_hidden_layers"], "hidden": cfg["hidden_size"], "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "inter": cfg["intermediate_size"], "vocab": cfg["vocab_size"],
    }


def flags(cfg: dict) -> dict:
    return {"tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False))}


SPEC = Spec(name="mistral_like", rules=RULES, dims=dims, flags=flags, hf_config_from_ms=to_hf_config)
'''

CONVERT_WEIGHT_PY = """
from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
"""

CONVERT_REVERSED_PY = """
from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
"""

PREDICT_YAML = """
seed: 0
output_dir: './output'
run_mode: 'predict'
use_parallel: False
use_legacy: True
load_checkpoint: ''
trainer:
  type: CausalLanguageModelingTrainer
  model_name: mistral_like
context:
  mode: 1
  device_target: "CPU"
model:
  model_config:
    type: MistralLikeConfig
    auto_register: mistral_like_config.MistralLikeConfig
    batch_size: 1
    seq_length: 256
    hidden_size: 4096
    num_layers: 32
    num_heads: 32
    n_kv_heads: 8
    intermediate_size: 14336
    vocab_size: 32768
    max_position_embedding: 32768
    rms_norm_eps: 1.0e-5
    theta: 1000000.0
    bos_token_id: 1
    eos_token_id: 2
    pad_token_id: 0
    compute_dtype: "float32"
    param_init_type: "float32"
    layernorm_compute_type: "float32"
    softmax_compute_type: "float32"
    rotary_dtype: "float32"
    use_past: True
    use_flash_attention: False
  arch:
    type: MistralLikeForCausalLM
    auto_register: mistral_like_model.MistralLikeForCausalLM
"""


def _copy_renamed(src: Path, dst: Path) -> None:
    text = src.read_text(encoding="utf-8")
    text = text.replace("llama3_1_config", "mistral_like_config").replace("Llama3", PREFIX)
    dst.write_text(text, encoding="utf-8")


def write_family(folder: Path, *, swap_gate_up: bool = False) -> Path:
    """Write the Mistral-style family folder into ``folder``; ``swap_gate_up`` plants a wrong mapping (gate and up
    projections exchanged: same shapes, so a round trip of the spec's own output cannot see it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gate, up = ("w3", "w1") if swap_gate_up else ("w1", "w3")
    files = {
        "family.py": FAMILY_PY,
        "hf_config.py": HF_CONFIG_PY,
        "weight_map.py": WEIGHT_MAP_PY.replace("{GATE}", gate).replace("{UP}", up),
        "convert_weight.py": CONVERT_WEIGHT_PY,
        "convert_reversed.py": CONVERT_REVERSED_PY,
        "predict.yaml": PREDICT_YAML,
    }
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (folder / "_base_mapping.py").write_text((LLAMA_DIR / "hf_config.py").read_text(encoding="utf-8"))
    _copy_renamed(LLAMA_DIR / "llama3_1_config.py", folder / "mistral_like_config.py")
    _copy_renamed(LLAMA_DIR / "llama3_1_model.py", folder / "mistral_like_model.py")
    return folder


# ------------------------------------------------------------------------------------------------- InternLM2-style
# A remote-code format (no transformers class): the reference is its exact native twin, HF LlamaForCausalLM, and
# reference.py turns the twin's checkpoint into the InternLM2 layout (to_format), written from InternLM2's modeling
# code -- never from this folder's spec.

INTERNLM2_FAMILY_PY = '''
"""An InternLM2-style family (test folder): InternLM2's checkpoint layout (fused ``wqkv``), Llama's architecture."""

from mf_ext.family import Family, Reference

from .hf_config import ARCH_KEYS

_TINY = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
         "num_attention_heads": 8, "max_position_embeddings": 256, "pad_token_id": 0}

FAMILY = Family(
    name="internlm2_like",
    model_names=("internlm2_like",),
    hf_architectures=("InternLM2ForCausalLM",),
    hf_model_types=("internlm2",),
    specs={"hf": "weight_map:SPEC"},
    classes={"config": "internlm2_like_config.InternLM2LikeConfig",
             "model": "internlm2_like_model.InternLM2LikeForCausalLM"},
    hf_config="hf_config",
    arch_keys=ARCH_KEYS,
    yamls={"predict": "predict.yaml"},
    reference=Reference(
        model="transformers:LlamaForCausalLM",
        config="transformers:LlamaConfig",
        tiny={"gqa4": {**_TINY, "num_key_value_heads": 2}, "gqa2": {**_TINY, "num_key_value_heads": 4}},
        to_format="reference:to_internlm2",
    ),
)
'''

INTERNLM2_REFERENCE_PY = '''
"""HF LlamaForCausalLM (the exact native twin) -> InternLM2's checkpoint layout.

Layout from InternLM2's remote code (``modeling_internlm2.py`` of internlm/internlm2-chat-7b):
``InternLM2Attention.forward`` computes ``qkv_states = self.wqkv(hidden_states)`` and
``rearrange(qkv_states, "b q (h gs d) -> b q h gs d", gs=2 + self.num_key_value_groups, d=self.head_dim)``, then
takes the first ``num_key_value_groups`` heads of each group as queries, ``[..., -2, :]`` as the key and
``[..., -1, :]`` as the value: the rows of ``wqkv`` are, per key/value head, its query heads, its key, its value.
Names: ``model.tok_embeddings``, ``attention.wqkv`` / ``attention.wo``, ``feed_forward.w1`` (gate) / ``w3`` (up) /
``w2`` (down), ``attention_norm``, ``ffn_norm``, ``model.norm``, ``output``. Rotary embedding: rotate-half, as Llama.
"""

import numpy as np


def to_internlm2(sd: dict, cfg: dict):
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg["hidden_size"] // heads
    rep = heads // kv
    out = {
        "model.tok_embeddings.weight": sd["model.embed_tokens.weight"],
        "model.norm.weight": sd["model.norm.weight"],
        "output.weight": sd["lm_head.weight"],
    }
    for i in range(cfg["num_hidden_layers"]):
        a, m, o = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp.", f"model.layers.{i}."
        hidden = sd[a + "q_proj.weight"].shape[1]
        q = sd[a + "q_proj.weight"].reshape(kv, rep, head_dim, hidden)
        k = sd[a + "k_proj.weight"].reshape(kv, 1, head_dim, hidden)
        v = sd[a + "v_proj.weight"].reshape(kv, 1, head_dim, hidden)
        out[o + "attention.wqkv.weight"] = np.concatenate([q, k, v], axis=1).reshape(-1, hidden)
        out[o + "attention.wo.weight"] = sd[a + "o_proj.weight"]
        out[o + "feed_forward.w1.weight"] = sd[m + "gate_proj.weight"]
        out[o + "feed_forward.w3.weight"] = sd[m + "up_proj.weight"]
        out[o + "feed_forward.w2.weight"] = sd[m + "down_proj.weight"]
        out[o + "attention_norm.weight"] = sd[o + "input_layernorm.weight"]
        out[o + "ffn_norm.weight"] = sd[o + "post_attention_layernorm.weight"]
    config = {
        "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "bias": False, "hidden_act": "silu",
        **{k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                               "num_key_value_heads", "vocab_size", "rms_norm_eps", "rope_theta",
                               "max_position_embeddings", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                               "pad_token_id")},
    }
    return out, config
'''

INTERNLM2_HF_CONFIG_PY = '''
"""InternLM2 config.json <-> model_config: Llama's mapping (copied beside it as _base_mapping.py)."""

from . import _base_mapping as _base
from ._base_mapping import ARCH_KEYS, LLAMA3_ROPE_KEYS, normalize_rope_scaling  # noqa: F401 (the config class)


def to_model_config(hf: dict) -> dict:
    if hf.get("model_type", "internlm2") != "internlm2":
        raise ValueError(f"config.json: model_type {hf.get('model_type')!r} is not 'internlm2'")
    if hf.get("bias", False):
        raise ValueError("config.json: bias=true is not supported")
    return _base.to_model_config({**hf, "model_type": "llama"})


def to_hf_config(mc: dict) -> dict:
    out = _base.to_hf_config(mc)
    out.update(architectures=["InternLM2ForCausalLM"], model_type="internlm2", bias=False)
    return out
'''

INTERNLM2_WEIGHT_MAP_PY = '''
"""InternLM2's names and fused wqkv <-> this folder's model (MindFormers' Llama names), as data."""

from mf_ext.convert.spec import {LAYOUT_IMPORT}, Rename, Spec, Split

from .hf_config import to_hf_config

O, MA, MF = "model.layers.{L}.", "model.layers.{L}.attention.", "model.layers.{L}.feed_forward."
Q, KV, UP = ("heads*head_dim", "hidden"), ("kv_heads*head_dim", "hidden"), ("inter", "hidden")
RULES = (
    Rename("model.tok_embeddings.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
    Rename("model.norm.weight", "model.norm_out.weight", ("hidden",)),
    Rename("output.weight", "lm_head.weight", ("vocab", "hidden")),
    Split(MA + "wqkv.weight", (MA + "wq.weight", MA + "wk.weight", MA + "wv.weight"), (Q, KV, KV), {LAYOUT}),
    Rename(MA + "wo.weight", MA + "wo.weight", ("hidden", "heads*head_dim")),
    Rename(MF + "w1.weight", MF + "w1.weight", UP),
    Rename(MF + "w3.weight", MF + "w3.weight", UP),
    Rename(MF + "w2.weight", MF + "w2.weight", ("hidden", "inter")),
    Rename(O + "attention_norm.weight", O + "attention_norm.weight", ("hidden",)),
    Rename(O + "ffn_norm.weight", O + "ffn_norm.weight", ("hidden",)),
)


def dims(cfg: dict) -> dict:
    heads = cfg["num_attention_heads"]
    return {
        "layers": cfg["num_hidden_layers"], "hidden": cfg["hidden_size"], "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads, "head_dim": cfg["hidden_size"] // heads,
        "inter": cfg["intermediate_size"], "vocab": cfg["vocab_size"],
    }


SPEC = Spec(name="internlm2_like", rules=RULES, dims=dims, hf_config_from_ms=to_hf_config)
'''

INTERNLM2_PACKINGS = {
    "groups": ("QkvGroups", 'QkvGroups("kv_heads")'),  # InternLM2's: per kv head [q heads, k, v]
    "concat": ("Concat", "Concat()"),  # wrong: all q rows, then k, then v
}


def write_internlm2_family(folder: Path, *, packing: str = "groups") -> Path:
    """Write the InternLM2-style family folder; ``packing="concat"`` plants a wrong ``wqkv`` packing (the same
    shapes and bytes, in another order: a round trip cannot see it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layout_import, layout = INTERNLM2_PACKINGS[packing]
    predict = PREDICT_YAML.replace("mistral_like", "internlm2_like").replace("MistralLike", "InternLM2Like")
    files = {
        "family.py": INTERNLM2_FAMILY_PY,
        "reference.py": INTERNLM2_REFERENCE_PY,
        "hf_config.py": INTERNLM2_HF_CONFIG_PY,
        "weight_map.py": INTERNLM2_WEIGHT_MAP_PY.replace("{LAYOUT_IMPORT}", layout_import).replace("{LAYOUT}", layout),
        "convert_weight.py": CONVERT_WEIGHT_PY,
        "convert_reversed.py": CONVERT_REVERSED_PY,
        "predict.yaml": predict,
    }
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (folder / "_base_mapping.py").write_text((LLAMA_DIR / "hf_config.py").read_text(encoding="utf-8"))
    for src, dst in (
        ("llama3_1_config.py", "internlm2_like_config.py"),
        ("llama3_1_model.py", "internlm2_like_model.py"),
    ):
        text = (LLAMA_DIR / src).read_text(encoding="utf-8")
        text = text.replace("llama3_1_config", "internlm2_like_config").replace("Llama3", "InternLM2Like")
        (folder / dst).write_text(text, encoding="utf-8")
    return folder
