"""Converters of folders written for MindFormers' convert_weight.py, driven by ``mf-ext convert --register_path`` and
``--convert``: called as MindFormers calls them (a MindSpore dtype, only what their signature takes), refused in one
line when they cannot honour what is asked (--dry-run, qkv_concat, a dtype), and never leaving partial output."""

from __future__ import annotations

import json

import pytest

from mf_ext.convert.cli import main as convert_main
from mf_ext.registry import Registered, load_plugin
from tests.foreign.foreign_helpers import tinyfactory_folder, tinyllama_folder, write

RECORDING = """
    import mindspore as ms
    import numpy as np
    from safetensors.numpy import load_file

    CALLS = []


    def convert_pt_to_ms(input_path, output_path, dtype=None, **kwargs):
        # qwen2_5 / telechat2 (r1.8.0): **kwargs, qkv_concat never read; dtype goes to ms.Tensor
        CALLS.append({"dtype": dtype, "kwargs": dict(kwargs)})
        w = load_file(input_path + "/model.safetensors")
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v, dtype=dtype)} for k, v in w.items()], output_path)
        return True
"""

DEEPSEEK_LIKE = """
    import os

    import mindspore as ms
    import numpy as np

    CALLS = []


    def convert_pt_to_ms(input_path, output_path, config=None):
        # research/deepseek3 (r1.8.0): no dtype, the options in a config dict, output_path a folder
        CALLS.append(config)
        os.makedirs(output_path, exist_ok=True)
        ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.ones(2, np.float32))}], output_path + "/w.ckpt")
"""

FAILING = """
    import os


    def convert_pt_to_ms(input_path, output_path, dtype=None, **kwargs):
        if kwargs.get("qkv_concat", True) and not os.path.exists(input_path + "/x"):
            print("Do not find huggingface checkpoint")
            return False  # internlm2 (r1.5.0): reports failure by returning False
        with open(output_path, "w") as f:
            f.write("half written")
        raise KeyError("model.layers.0.attention.wq.weight")
"""

REVERSE = """
    CALLS = []


    def convert_ms_to_pt(input_path, output_path, dtype=None, **kwargs):
        CALLS.append(dtype)
        with open(output_path, "wb") as f:  # MindFormers' reverse converters write one torch .bin file
            f.write(b"bin")
"""


def _args(sub, folder, src, out, *extra):
    return [sub, "--register_path", str(folder), "--input_path", str(src), "--output_path", str(out), *extra]


def _leftovers(path):
    return sorted(p.name for p in path.iterdir() if p.name.startswith(".mf-ext-partial"))


def test_mindformers_dtype_convention(tiny, tmp_path, capsys):
    import mindspore as ms

    folder = write(tmp_path / "qwenish", {"convert_weight.py": RECORDING})
    out = tmp_path / "out" / "w.ckpt"
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, out, "--dtype", "bf16")) == 0, capsys.readouterr().err
    calls = load_plugin(folder).import_module("convert_weight").CALLS
    assert calls[-1]["dtype"] is ms.bfloat16  # what MindFormers' convert_weight.py passes for --dtype bf16
    assert calls[-1]["kwargs"] == {"qkv_concat": False}  # as MindFormers passes its flags; nothing of ours
    assert {str(v.dtype) for v in ms.load_checkpoint(str(out)).values()} == {"BFloat16"}
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, tmp_path / "f32.ckpt")) == 0
    assert calls[-1]["dtype"] is None
    assert not _leftovers(out.parent) and not _leftovers(tmp_path)


def test_what_a_converter_cannot_honour_is_refused_before_it_runs(tiny, tmp_path, capsys):
    folder = write(tmp_path / "qwenish", {"convert_weight.py": RECORDING})
    calls = load_plugin(folder).import_module("convert_weight").CALLS
    for extra, message in [
        (["--dry-run"], "cannot honour dry_run=True (asked by --dry-run)"),
        (["--qkv_concat"], "cannot honour qkv_concat=True (asked by --qkv_concat)"),
        (["--format", "safetensors"], "cannot honour format='safetensors' (asked by --format)"),
    ]:
        out = tmp_path / "x.ckpt"
        assert convert_main(_args("hf_to_ms", folder, tiny.hf, out, *extra)) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and "convert_weight.py" in err, err
        assert "never reads it" in err and "Traceback" not in err
        assert not out.exists() and not calls and not _leftovers(tmp_path)


def test_converter_with_another_signature(tiny, tmp_path, capsys):
    folder = write(tmp_path / "deepseekish", {"convert_weight.py": DEEPSEEK_LIKE})
    out = tmp_path / "ms_dir"
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, out)) == 0, capsys.readouterr().err
    assert (out / "w.ckpt").is_file() and load_plugin(folder).import_module("convert_weight").CALLS == [None]
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, tmp_path / "bf", "--dtype", "bf16")) != 0
    err = capsys.readouterr().err.strip()
    assert "takes no dtype" in err and "convert_pt_to_ms(input_path, output_path, config=None)" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "bf").exists()


def test_converter_failures_are_one_line_and_leave_nothing(tiny, tmp_path, capsys):
    folder = write(tmp_path / "failing", {"convert_weight.py": FAILING})
    out = tmp_path / "x.ckpt"
    # MindFormers passes qkv_concat=False explicitly: this converter's default (True) must not apply
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, out)) != 0
    err = capsys.readouterr().err.strip()
    assert "convert_weight.py': convert_pt_to_ms failed: KeyError" in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not _leftovers(tmp_path)
    assert convert_main(_args("hf_to_ms", folder, tiny.hf, out, "--qkv_concat")) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "returned False" in err[-1] and not out.exists() and not _leftovers(tmp_path)


def test_reverse_converter_gets_a_torch_dtype_and_keeps_its_file(tmp_path, capsys):
    import torch

    folder = write(tmp_path / "rev", {"convert_reversed.py": REVERSE})
    src = tmp_path / "in.ckpt"
    src.write_bytes(b"")
    out = tmp_path / "pytorch_model.bin"
    # MindFormers' documented flags: --reversed writes what its converter writes (one .bin file here)
    argv = ["--register_path", str(folder), "--input_path", str(src), "--output_path", str(out), "--reversed"]
    assert convert_main([*argv, "--dtype", "fp16"]) == 0, capsys.readouterr().err
    assert out.read_bytes() == b"bin" and load_plugin(folder).import_module("convert_reversed").CALLS == [torch.float16]


def _entry(kind, plugin):
    return Registered(key=kind, reference="m.C", module_type=kind, cls=type("C", (), {}), plugin=plugin)


def test_convert_picks_the_model_folders_converter(tiny, tmp_path):
    from mf_ext.api import converter_plugin
    from mf_ext.config import ConfigError

    tok_folder = load_plugin(tinyllama_folder(tmp_path / "a", tiny.tok))  # tokenizer only, no converter
    model_folder = load_plugin(tinyfactory_folder(tmp_path / "b", tiny.tok))  # has convert_weight.py
    conv_only = load_plugin(write(tmp_path / "c" / "conv", {"convert_weight.py": RECORDING}))
    entries = [_entry("tokenizer", tok_folder), _entry("models", model_folder)]
    assert converter_plugin(entries, [tok_folder.root, model_folder.root], tiny.hf) is model_folder
    entries = [_entry("tokenizer", tok_folder), _entry("config", model_folder)]
    assert converter_plugin(entries, [tok_folder.root], tiny.hf) is model_folder
    # a register path holding a converter, though no class came from it
    assert converter_plugin([_entry("tokenizer", tok_folder)], [tok_folder.root, conv_only.root], tiny.hf) is conv_only
    # a MindFormers built-in model and no converter anywhere: the built-in family that reads config.json
    builtin = converter_plugin([_entry("tokenizer", tok_folder)], [tok_folder.root], tiny.hf)
    assert builtin.family.name == "llama3_1"
    other = tmp_path / "hf_other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["NoSuchForCausalLM"]}))
    with pytest.raises(ConfigError) as err:
        converter_plugin([_entry("tokenizer", tok_folder)], [tok_folder.root], other, "NoSuchForCausalLM")
    msg = str(err.value)
    assert "no converter for NoSuchForCausalLM" in msg and str(tok_folder.root) in msg and "\n" not in msg


def test_convert_cached_passes_qkv_concat_as_mindformers_does(tiny, tmp_path):
    from mf_ext.api import convert_cached

    folder = write(tmp_path / "conv", {"convert_weight.py": RECORDING})
    out = convert_cached(load_plugin(folder), tiny.hf, dtype="float16", cache_dir=tmp_path / "cache", verbose=False)
    import mindspore as ms

    calls = load_plugin(folder).import_module("convert_weight").CALLS
    assert calls == [{"dtype": ms.float16, "kwargs": {"qkv_concat": False}}] and out.is_file()
    assert not _leftovers(out.parent)
