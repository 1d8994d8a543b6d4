"""Self-written plug-in folders reproducing the patterns of MindFormers' own research folders (written for
``run_mindformer.py``), tiny HF references and a tokenizer built with the ``tokenizers`` library.

Patterns (each from a real folder of mindspore-lab/mindformers, re-written here from scratch):

* ``tinyllama`` (research/llama3_1 r1.8.0): a tokenizer-only ``auto_register`` over MindFormers' built-in
  ``LlamaConfig`` / ``LlamaForCausalLM``, a predict YAML with ``use_past: True``, ``use_flash_attention: True``,
  ``is_dynamic: False`` and an Ascend context; its files import each other as siblings (``from tinyllama_vocab import
  X``, internlm2's style) and through the MindFormers root (``from research.tinyllama.tinyllama_vocab import Y``,
  telechat2's and deepseek3's style); no converter of its own.
* ``tinyfactory`` (research/deepseek3): ``model.arch`` is a plain class whose ``__new__`` returns the network; its
  converter follows MindFormers' convention (``dtype`` is a MindSpore dtype: a string makes ``ms.Tensor`` raise) and
  honours ``qkv_concat`` with MindFormers' fused layout (``qkv_concat_hf2mg`` / ``ffn_concat_hf2mg``); its YAML sets
  ``qkv_concat: True``.
* converters with other signatures: ``convert_pt_to_ms(src, dst, config=None)`` (deepseek3's), one that takes
  ``**kwargs`` and ignores ``qkv_concat`` (qwen2_5's / telechat2's), one that returns False (internlm2's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# tiny architecture shared by the HF reference and the YAMLs (MindFormers' LlamaConfig spelling)
VOCAB = 320
ARCH = dict(hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=160, vocab_size=VOCAB)
SEQ_LENGTH = 64
CORPUS = (
    "On a small island at the edge of a cold grey sea there stood a lighthouse. The keeper climbed the stairs "
    "every evening and lit the lamp, and the little robot counted the ships that passed in the night. "
) * 4


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def make_tokenizer_json(path: Path) -> Path:
    """A byte-level BPE ``tokenizer.json`` trained here with the ``tokenizers`` library (no special tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([CORPUS], trainer)
    assert tok.get_vocab_size() <= VOCAB
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def make_hf(path: Path, seed: int = 5) -> Path:
    from tests.hf_fixtures import make_hf_llama

    return make_hf_llama(
        path,
        vocab_size=VOCAB,
        hidden_size=ARCH["hidden_size"],
        intermediate_size=ARCH["intermediate_size"],
        num_layers=ARCH["num_layers"],
        num_heads=ARCH["num_heads"],
        num_kv_heads=ARCH["n_kv_heads"],
        rope_theta=10000.0,
        seed=seed,
    )


def hf_greedy_text(hf_dir: Path, tokenizer_json: Path, prompt: str, new_tokens: int) -> str:
    """HF transformers' own greedy continuation of ``prompt`` (fp32), decoded with the same tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json))
    ids = tok(prompt)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    return tok.decode(out[0].tolist(), skip_special_tokens=True)


# ---------------------------------------------------------------------------------------------------------- YAMLs
def predict_yaml(model_config: dict, arch: dict, tokenizer: dict) -> str:
    """A predict YAML laid out as MindFormers' research YAMLs are (Ascend context, paged-attention settings)."""
    import yaml

    mc = {
        "batch_size": 1,
        "seq_length": SEQ_LENGTH,
        **ARCH,
        "rms_norm_eps": 1.0e-5,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": VOCAB - 1,  # a token the tokenizer never produces (MindFormers masks pad ids as keys)
        "ignore_token_id": -100,
        "max_position_embedding": 1024,
        "theta": 10000.0,
        "compute_dtype": "float32",
        "layernorm_compute_type": "float32",
        "softmax_compute_type": "float32",
        "rotary_dtype": "float32",
        "param_init_type": "float32",
        "use_past": True,
        "is_dynamic": False,
        "use_flash_attention": True,
        "block_size": 16,
        "num_blocks": 64,
        "max_decode_length": 32,
        "top_k": 3,
        "top_p": 1,
        "do_sample": False,
        **model_config,
    }
    cfg = {
        "seed": 0,
        "output_dir": "./output",
        "load_checkpoint": "",
        "run_mode": "predict",
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "tiny"},
        "runner_config": {"epochs": 1, "batch_size": 1, "sink_mode": True, "sink_size": 1},
        "use_parallel": False,
        "context": {"mode": 0, "device_target": "Ascend", "max_device_memory": "58GB", "device_id": 0},
        "model": {"model_config": mc, "arch": arch},
        "processor": {"return_tensors": "ms", "tokenizer": tokenizer, "type": "LlamaProcessor"},
        "metric": {"type": "PerplexityMetric"},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


# ---------------------------------------------------------------------------------------------------------- folders
TOKENIZER_PY = """
    from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

    # sibling import: run_mindformer.py appends the register path to sys.path
    from {name}_vocab import VOCAB_FILE_NAME
    # import through the MindFormers root: run_mindformer.py runs from it (ROOT/research/{name})
    from research.{name}.{name}_vocab import check_vocab


    class TinyTokenizer(PreTrainedTokenizerFast):
        vocab_files_names = {{"vocab_file": VOCAB_FILE_NAME}}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, vocab_file=None, **kwargs):
            super().__init__(tokenizer_file=check_vocab(vocab_file), **kwargs)
"""

VOCAB_PY = """
    import os

    VOCAB_FILE_NAME = "tokenizer.json"


    def check_vocab(path):
        if not path or not os.path.isfile(path):
            raise ValueError(f"vocab_file {path!r} not found")
        return path
"""


def tinyllama_folder(root: Path, tokenizer_json: Path) -> Path:
    """``ROOT/research/tinyllama``: tokenizer-only auto_register over MindFormers' built-in Llama (llama3_1's)."""
    folder = root / "research" / "tinyllama"
    write(
        folder,
        {
            "tinyllama_tokenizer.py": TOKENIZER_PY.format(name="tinyllama"),
            "tinyllama_vocab.py": VOCAB_PY,
            "predict_tinyllama.yaml": predict_yaml(
                {"type": "LlamaConfig"},
                {"type": "LlamaForCausalLM"},
                {
                    "type": "TinyTokenizer",
                    "auto_register": "tinyllama_tokenizer.TinyTokenizer",
                    "vocab_file": str(tokenizer_json),
                },
            ),
        },
    )
    return folder


FACTORY_MODEL_PY = """
    from mindformers import LlamaForCausalLM
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

    from tinyfactory_config import TinyFactoryConfig  # sibling import


    @MindFormerRegister.register(MindFormerModuleType.MODELS)
    class TinyFactoryForCausalLM:
        \"\"\"Chooses its network when built, as research/deepseek3's DeepseekV3ForCausalLM does.\"\"\"

        def __new__(cls, config, *args, **kwargs):
            assert isinstance(config, TinyFactoryConfig), type(config)
            return LlamaForCausalLM(config)
"""

FACTORY_CONFIG_PY = """
    from mindformers import LlamaConfig
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister


    @MindFormerRegister.register(MindFormerModuleType.CONFIG)
    class TinyFactoryConfig(LlamaConfig):
        model_type = "tinyfactory"
"""

# HF Llama names -> MindFormers' Llama names, and MindFormers' fused layout through its own helpers
NAMES_PY = """
    import re

    _LAYER = {
        "self_attn.q_proj": "attention.wq",
        "self_attn.k_proj": "attention.wk",
        "self_attn.v_proj": "attention.wv",
        "self_attn.o_proj": "attention.wo",
        "mlp.gate_proj": "feed_forward.w1",
        "mlp.down_proj": "feed_forward.w2",
        "mlp.up_proj": "feed_forward.w3",
        "input_layernorm": "attention_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    _TOP = {
        "model.embed_tokens.weight": "model.tok_embeddings.embedding_weight",
        "model.norm.weight": "model.norm_out.weight",
        "lm_head.weight": "lm_head.weight",
    }


    def hf_to_ms_name(name):
        if name in _TOP:
            return _TOP[name]
        m = re.fullmatch(r"model\\.layers\\.(\\d+)\\.(.+)\\.weight", name)
        return f"model.layers.{m.group(1)}.{_LAYER[m.group(2)]}.weight"
"""

MF_CONVERTER_PY = """
    import json
    import os

    import mindspore as ms
    import numpy as np
    from mindformers.utils.convert_utils import ffn_concat_hf2mg, qkv_concat_hf2mg
    from safetensors.numpy import load_file

    from tinyfactory_names import hf_to_ms_name  # sibling import inside the converter

    CALLS = []


    def convert_pt_to_ms(input_path, output_path, dtype=None, qkv_concat=False, **kwargs):
        \"\"\"MindFormers' convention: dtype is a MindSpore dtype (ms.Tensor refuses a string).\"\"\"
        CALLS.append({"dtype": dtype, "qkv_concat": qkv_concat, "kwargs": sorted(kwargs)})
        cfg = json.load(open(os.path.join(input_path, "config.json")))
        weights = {hf_to_ms_name(k): v for k, v in load_file(os.path.join(input_path, "model.safetensors")).items()}
        if qkv_concat:
            heads, kv, hidden = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
            for i in range(cfg["num_hidden_layers"]):
                p = f"model.layers.{i}."
                qkv = np.concatenate([weights.pop(p + f"attention.{w}.weight") for w in ("wq", "wk", "wv")])
                weights[p + "attention.w_qkv.weight"] = qkv_concat_hf2mg(qkv, heads, kv, hidden)
                ffn = np.concatenate([weights.pop(p + f"feed_forward.{w}.weight") for w in ("w1", "w3")])
                weights[p + "feed_forward.w_gate_hidden.weight"] = ffn_concat_hf2mg(ffn, cfg["intermediate_size"])
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v, dtype=dtype)} for k, v in weights.items()], output_path)
        return True
"""


def tinyfactory_folder(root: Path, tokenizer_json: Path) -> Path:
    """``ROOT/research/tinyfactory``: a factory ``model.arch``, a MindFormers-convention converter, qkv_concat."""
    folder = root / "research" / "tinyfactory"
    write(
        folder,
        {
            "tinyfactory_config.py": FACTORY_CONFIG_PY,
            "tinyfactory_model.py": FACTORY_MODEL_PY,
            "tinyfactory_names.py": NAMES_PY,
            "convert_weight.py": MF_CONVERTER_PY,
            "tinyfactory_tokenizer.py": TOKENIZER_PY.format(name="tinyfactory"),
            "tinyfactory_vocab.py": VOCAB_PY,
            "predict_tinyfactory.yaml": predict_yaml(
                {
                    "type": "TinyFactoryConfig",
                    "auto_register": "tinyfactory_config.TinyFactoryConfig",
                    "qkv_concat": True,
                },
                {"type": "TinyFactoryForCausalLM", "auto_register": "tinyfactory_model.TinyFactoryForCausalLM"},
                {
                    "type": "TinyTokenizer",
                    "auto_register": "tinyfactory_tokenizer.TinyTokenizer",
                    "vocab_file": str(tokenizer_json),
                },
            ),
        },
    )
    return folder


def run_launcher(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MF_EXT_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, str(REPO / "run_mindformer_ext.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def predict_args(yaml_path: Path, register_path: Path, out: Path, prompt: str, n: int, *weights: str) -> list[str]:
    return [
        "--config",
        str(yaml_path),
        "--register_path",
        str(register_path),
        *weights,
        "--predict_data",
        prompt,
        "--max_new_tokens",
        str(n),
        "--output_dir",
        str(out),
        "--model.model_config.eos_token_id",
        "-1",  # exactly n tokens, as HF's generate without eos
    ]


def one_error_line(stderr: str) -> str:
    """The launcher's ``error:`` line; fails if a traceback was printed."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def read(path: Path) -> dict:
    return json.loads(path.read_text())
