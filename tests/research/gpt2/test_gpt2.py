"""research/gpt2 beyond the Family-driven parity test (tests/test_family_parity.py runs its tiny configurations):
our ``.ckpt`` against MindFormers' own GPT2 converter (r1.5.0, read from the local MindFormers git mirror, never
committed), the HF-config mapping, the tokenizer against HF's ``GPT2TokenizerFast`` on a vocabulary trained here and
``mf_ext.load_model(..., convert=HF_DIR)`` taking the architecture from ``config.json``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.family_parity import hf_logits, prompt_ids, reference_model

REPO = Path(__file__).resolve().parents[3]
FOLDER = REPO / "research" / "gpt2"
MIRROR = Path(os.environ.get("MINDFORMERS_MIRROR", "/work/.mirror/mindspore-lab+mindformers/repo"))


@pytest.fixture(scope="module")
def plugin():
    from mf_ext.registry import load_plugin

    return load_plugin(FOLDER)


# ------------------------------------------------------------------------------- MindFormers' own GPT2 converter
def _mindformers_converter(tmp: Path):
    """``mindformers/models/gpt2/convert_weight.py`` of MindFormers r1.5.0 (the last release shipping GPT2), taken
    from the local git mirror into ``tmp`` and imported from there."""
    if not (MIRROR / "HEAD").exists() and not (MIRROR / ".git").exists():
        pytest.skip(f"MindFormers git mirror not found at {str(MIRROR)!r} (set MINDFORMERS_MIRROR)")
    out = subprocess.run(
        ["git", "-C", str(MIRROR), "show", "r1.5.0:mindformers/models/gpt2/convert_weight.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        pytest.skip(f"MindFormers mirror has no r1.5.0 GPT2 converter: {out.stderr.strip()}")
    path = tmp / "mindformers_gpt2_convert_weight.py"
    path.write_text(out.stdout)
    spec = importlib.util.spec_from_file_location("mindformers_gpt2_convert_weight", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours_for_theirs(name: str, ours: dict[str, np.ndarray], hidden: int) -> np.ndarray:
    """Our tensor holding what MindFormers' GPT2 (r1.5.0) names ``name``. The differences, each deliberate:

    * names: MindFormers' GPT2 (``backbone.blocks.{i}.attention.dense1`` ...) vs the shared blocks' names, which are
      MindFormers' Llama names where one exists (``model.layers.{i}.attention...``, ``attention_norm``, ``norm_out``);
    * ``c_attn``: MindFormers splits it into ``dense1/2/3`` (q, k, v); we keep it fused as ``w_qkv`` (``[q; k; v]``
      rows), so a single matmul serves q, k and v;
    * layout: MindFormers transposes only q/k/v to ``(out, in)`` and keeps ``attention.projection`` and the MLP's
      ``mapping`` / ``projection`` in Conv1D's ``(in, out)`` (its Linear cells run with ``transpose_b=False``); we
      store every weight ``(out, in)``.
    The values are the same bytes.
    """
    parts = name.split(".")
    if name.startswith("backbone.embedding."):
        table = "tok_embeddings" if parts[2] == "word_embedding" else "pos_embeddings"
        return ours[f"model.{table}.embedding_weight"]
    if name.startswith("backbone.layernorm."):
        return ours[f"model.norm_out.{parts[2]}"]
    layer, module, leaf = parts[2], ".".join(parts[3:-1]), parts[-1]
    base = f"model.layers.{layer}."
    if module in ("layernorm1", "layernorm2"):
        return ours[base + ("attention_norm." if module == "layernorm1" else "ffn_norm.") + leaf]
    if module.startswith("attention.dense"):
        k = int(module[-1]) - 1
        return ours[base + f"attention.w_qkv.{leaf}"][k * hidden : (k + 1) * hidden]
    mine = {
        "attention.projection": "attention.wo",
        "output.mapping": "feed_forward.c_fc",
        "output.projection": "feed_forward.c_proj",
    }[module]
    arr = ours[f"{base}{mine}.{leaf}"]
    return arr.T if leaf == "weight" else arr


def test_ckpt_equals_mindformers_gpt2_converter_tensor_for_tensor(plugin, tmp_path):
    import mindspore as ms
    import torch

    theirs_mod = _mindformers_converter(tmp_path)
    ref = reference_model(plugin.family, "tied_gelu_new")
    ref.save_pretrained(tmp_path / "hf")
    # MindFormers' converter reads a torch pickle with GPT2Model's names (openai-community/gpt2's pytorch_model.bin)
    torch.save(ref.transformer.state_dict(), tmp_path / "gpt2.bin")
    theirs_mod.convert_pt_to_ms(str(tmp_path / "gpt2.bin"), str(tmp_path / "mf.ckpt"), layers=ref.config.n_layer)
    plugin.convert_pt_to_ms(str(tmp_path / "hf"), str(tmp_path / "ours.ckpt"), progress=False)
    theirs = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(tmp_path / "mf.ckpt")).items()}
    ours = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(tmp_path / "ours.ckpt")).items()}
    # the causal-mask buffers (attn.bias / masked_bias) are no weights: we drop them, MindFormers copies them if present
    theirs = {k: v for k, v in theirs.items() if not k.endswith(("attention.beta", "attention.masked_beta"))}
    assert len(theirs) == 4 + 16 * ref.config.n_layer
    covered = 0
    for name, value in theirs.items():
        mine = _ours_for_theirs(name, ours, ref.config.n_embd)
        assert mine.dtype == value.dtype and mine.shape == value.shape, name
        np.testing.assert_array_equal(mine, value, err_msg=name)
        covered += mine.size
    assert covered == sum(v.size for v in ours.values())  # every tensor of ours is one of theirs (w_qkv in thirds)


def test_gpt2model_names_of_the_original_release_convert_to_the_same_checkpoint(plugin, tmp_path):
    """openai-community/gpt2's files name tensors as GPT2Model does (``h.0.attn.c_attn.weight``, ``wte.weight``, no
    ``lm_head``) and carry the causal-mask buffers ``h.{i}.attn.bias``: the same weights in that layout convert to
    the same bytes as GPT2LMHeadModel's ``save_pretrained`` output."""
    import shutil

    import torch
    from safetensors.torch import save_file

    ref = reference_model(plugin.family, "tied_gelu_new")
    ref.save_pretrained(tmp_path / "hf")
    state = {k: v.contiguous() for k, v in ref.transformer.state_dict().items()}
    n = ref.config.n_positions
    for i in range(ref.config.n_layer):
        state.setdefault(f"h.{i}.attn.bias", torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n))
    (tmp_path / "bare").mkdir()
    save_file(state, str(tmp_path / "bare" / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(tmp_path / "hf" / "config.json", tmp_path / "bare" / "config.json")
    plugin.convert_pt_to_ms(str(tmp_path / "hf"), str(tmp_path / "a.ckpt"), progress=False)
    plugin.convert_pt_to_ms(str(tmp_path / "bare"), str(tmp_path / "b.ckpt"), progress=False)
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes()


# ------------------------------------------------------------------------------------------------------ hf_config
def test_hf_config_mapping_round_trip_and_refusals(plugin):
    from transformers import GPT2Config

    to_mc, to_hf = plugin.family.hf_mapping()
    hf = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_inner=96, vocab_size=256, activation_function="gelu").to_dict()
    mc = to_mc(hf)
    assert (mc["intermediate_size"], mc["hidden_act"], mc["max_position_embedding"]) == (96, "gelu", 1024)
    back = to_hf(mc)
    assert back["architectures"] == ["GPT2LMHeadModel"] and to_mc(back) == mc
    assert to_hf(to_mc(GPT2Config(n_embd=64, n_layer=2, n_head=4).to_dict()))["n_inner"] is None
    for change, match in (
        ({"model_type": "gpt_neox"}, "model_type 'gpt_neox' is not a GPT2 model"),
        ({"activation_function": "swish"}, "activation_function 'swish' is not supported"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True is not supported"),
        ({"add_cross_attention": True}, "add_cross_attention=True is not supported"),
    ):
        with pytest.raises(ValueError, match=match):
            to_mc({**hf, **change})


# ------------------------------------------------------------------------------------------------------- tokenizer
TEXTS = [
    "Hello world! The light is burning.",
    "  leading spaces\n\nnewlines\ttabs and trailing   ",
    "北京 island 🌊 émoji bytes",
    "it's <|endoftext|> done",
    "",
]


@pytest.fixture(scope="module")
def bpe_files(tmp_path_factory):
    """A byte-level BPE vocabulary trained here (``vocab.json`` + ``merges.txt``), and HF's ``GPT2TokenizerFast``
    built from that pair and saved (``tokenizer.json``)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    tmp = tmp_path_factory.mktemp("bpe")
    corpus = (
        "the lighthouse keeper and the little robot stood on a small island at the edge of the sea. " * 20
    ).split()
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator([" ".join(corpus), *TEXTS], vocab_size=400, special_tokens=["<|endoftext|>"])
    trainer.save_model(str(tmp))
    hf = GPT2TokenizerFast(vocab_file=str(tmp / "vocab.json"), merges_file=str(tmp / "merges.txt"))
    hf.save_pretrained(tmp / "hf")
    return tmp


def test_tokenizer_matches_hf_gpt2_tokenizer_fast(plugin, bpe_files):
    from transformers import GPT2TokenizerFast

    mod = plugin.import_module("gpt2_tokenizer")
    hf = GPT2TokenizerFast(vocab_file=str(bpe_files / "vocab.json"), merges_file=str(bpe_files / "merges.txt"))
    from_pair = mod.GPT2BPETokenizerFast(vocab_file=str(bpe_files / "vocab.json"))  # merges.txt found beside it
    from_json = mod.GPT2BPETokenizerFast(vocab_file=str(bpe_files / "hf" / "tokenizer.json"))
    slow = mod.GPT2BPETokenizer(vocab_file=str(bpe_files / "vocab.json"))
    eot = hf.convert_tokens_to_ids("<|endoftext|>")
    assert from_pair.eos_token_id == from_json.eos_token_id == slow.eos_token_id == eot
    for text in TEXTS:
        want = hf(text)["input_ids"]
        assert from_pair(text)["input_ids"] == want == from_json(text)["input_ids"] == slow(text)["input_ids"], text
        assert from_pair.decode(want) == hf.decode(want) == slow.decode(want) == text
    assert eot in from_pair("it's <|endoftext|> done")["input_ids"]  # the special token stays one token


def test_tokenizer_bad_input_names_the_file(plugin, tmp_path):
    cls = plugin.import_module("gpt2_tokenizer").GPT2BPETokenizerFast
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(ValueError, match="merges.txt' not found: expected GPT2's merges.txt"):
        cls(vocab_file=str(tmp_path / "vocab.json"))
    with pytest.raises(ValueError, match="tokenizer.json' does not exist"):
        cls(vocab_file=str(tmp_path / "x" / "tokenizer.json"))


# ------------------------------------------------------------------------------------------------------ load_model
# untied head, n_inner 96 (not 4 * n_embd), erf GELU, a shorter position table: the variants the parity
# configuration leaves out; the Family keeps one tiny configuration to save test time
VARIANT = {
    "vocab_size": 256, "n_embd": 64, "n_layer": 2, "n_head": 4, "bos_token_id": 1, "eos_token_id": 2,
    "pad_token_id": 0, "n_positions": 64, "n_inner": 96, "activation_function": "gelu", "tie_word_embeddings": False,
}  # fmt: skip


def test_load_model_converts_with_architecture_from_config_json(plugin, tmp_path, monkeypatch):
    """``mf_ext.load_model(config=predict.yaml, register_path=..., convert=HF_DIR)``: the YAML's GPT2-small
    architecture is replaced by config.json's, the model reproduces the reference's logits, and the checkpoint
    converts back to the same bytes."""
    import dataclasses

    import mf_ext
    from tests.convert.convert_helpers import read_st_dir

    monkeypatch.chdir(tmp_path)
    family = plugin.family
    family = dataclasses.replace(family, reference=dataclasses.replace(family.reference, tiny={"variant": VARIANT}))
    ref = reference_model(family, "variant")
    ref.save_pretrained(tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    model = mf_ext.load_model(
        config=str(FOLDER / "predict.yaml"), register_path=str(FOLDER), convert=str(tmp_path / "hf"),
        mode=1, seq_length=64,
    )  # fmt: skip
    assert type(model).__name__ == "GPT2ForCausalLM"
    c = model.config
    assert (c.num_layers, c.hidden_size, c.intermediate_size, c.hidden_act, c.tie_word_embeddings) == (
        2, 64, 96, "gelu", False,
    )  # fmt: skip
    ids = prompt_ids(256, seed=1)
    assert np.abs(mf_ext.logits(model, ids) - hf_logits(ref, ids)).max() <= 1e-4
    plugin.convert_pt_to_ms(tmp_path / "hf", tmp_path / "m.ckpt", progress=False)
    plugin.convert_ms_to_pt(tmp_path / "m.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(tmp_path / "back") == read_st_dir(tmp_path / "hf")
