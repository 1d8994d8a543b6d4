"""A new family is a new folder: a Mistral-style family written into a temporary folder (tests/new_family.py) is
found through --register_path, converts, passes the Family-driven parity test and gets a YAML from its own classes
-- with no edit under mf_ext/. So does an InternLM2-style converter (remote-code layout: fused ``wqkv`` split into
``wq/wk/wv``, its reference synthesised from the native twin through ``reference.to_format``). A deliberately wrong
mapping or packing in such a folder passes a round trip and fails parity.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.convert.convert_helpers import read_st_dir
from tests.family_parity import check_parity, reference_checkpoint, reference_model
from tests.new_family import write_family, write_internlm2_family


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_family(tmp_path_factory.mktemp("families") / "mistral_like")


@pytest.fixture(scope="module")
def plugin(folder):
    from mf_ext.registry import load_plugin

    return load_plugin(folder)


def test_the_folder_declares_a_family_read_without_mindspore(folder):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mf_ext.registry import load_plugin, family_for_hf_config\n"
        f"fam = load_plugin({str(folder)!r}).family\n"
        "assert fam.reads({'architectures': ['MistralForCausalLM']}) and not fam.legacy\n"
        f"assert family_for_hf_config({{'architectures': ['MistralForCausalLM']}}, {str(folder.parent)!r}) is not None\n"
        "assert fam.spec().rules and fam.yaml('predict').is_file()\n"
        "heavy = [m for m in ('mindspore', 'mindformers', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parity_of_the_new_family(plugin, tmp_path, monkeypatch):
    # one tiny configuration per mode keeps this file short; tests/test_family_parity.py runs them all for the
    # built-in families with the same check_parity
    monkeypatch.chdir(tmp_path)  # MindFormers writes ./output/log
    check_parity(plugin, "window_covers_context", tmp_path)


def test_parity_of_the_new_family_in_graph_mode(plugin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_parity(plugin, "gqa_no_window", tmp_path, graph=True)


def test_convert_cli_and_round_trip_through_the_register_path(plugin, folder, tmp_path):
    from mf_ext.convert.cli import main

    src = reference_checkpoint(plugin.family, reference_model(plugin.family, "gqa_no_window"), tmp_path / "hf")
    common = ["--register_path", str(folder)]
    assert main(["hf_to_ms", *common, "--input_path", str(src), "--output_path", str(tmp_path / "w.ckpt")]) == 0
    assert (
        main(["ms_to_hf", *common, "--input_path", str(tmp_path / "w.ckpt"), "--output_path", str(tmp_path / "b")]) == 0
    )
    assert read_st_dir(tmp_path / "b") == read_st_dir(src)
    back = json.loads((tmp_path / "b" / "config.json").read_text())
    assert back["architectures"] == ["MistralForCausalLM"] and back["model_type"] == "mistral"


def test_a_wrong_mapping_round_trips_but_fails_parity(tmp_path, monkeypatch):
    from mf_ext.registry import load_plugin

    monkeypatch.chdir(tmp_path)
    bad = load_plugin(write_family(tmp_path / "bad" / "mistral_like", swap_gate_up=True))
    src = reference_checkpoint(bad.family, reference_model(bad.family, "gqa_no_window"), tmp_path / "hf")
    bad.convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    bad.convert_ms_to_pt(tmp_path / "w.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(tmp_path / "back") == read_st_dir(src)  # a round trip cannot see it ...
    with pytest.raises(AssertionError, match="max \\|delta logits\\|"):  # ... the reference can
        check_parity(bad, "gqa_no_window", tmp_path / "parity")


def test_migrate_writes_the_new_family_classes_never_another_family(plugin, folder, tmp_path, capsys):
    """`mf-ext migrate --hf_config --register_path <new family>`: the YAML names this folder's classes; the family
    declares no tokenizer, so the YAML has none (never another family's), and it validates clean."""
    from mf_ext.migrate.cli import migrate_main, validate_main

    ref = reference_model(plugin.family, "gqa_no_window")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**ref.config.to_dict(), "architectures": ["MistralForCausalLM"]}))
    out = tmp_path / "model.yaml"
    assert migrate_main(["--hf_config", str(cfg), "--register_path", str(folder), "--output", str(out), "-q"]) == 0
    text = out.read_text()
    data = yaml.safe_load(text)
    assert data["model"]["model_config"]["auto_register"] == "mistral_like_config.MistralLikeConfig"
    assert data["model"]["arch"]["auto_register"] == "mistral_like_model.MistralLikeForCausalLM"
    assert "processor" not in data
    assert "llama" not in text.lower()
    capsys.readouterr()
    assert validate_main(["--config", str(out), "--register_path", str(folder), "--hf_config", str(cfg)]) == 0
    # without --register_path the family is found by config.json's architectures among built-in/installed ones:
    # this folder is neither, so the built-in research/mistral answers (never this folder's classes) ...
    assert migrate_main(["--hf_config", str(cfg), "--output", str(tmp_path / "x.yaml"), "-q"]) == 0
    builtin = yaml.safe_load((tmp_path / "x.yaml").read_text())
    assert builtin["model"]["model_config"]["auto_register"] == "mistral_config.MistralConfig"
    # ... and an architecture no family reads gets an error naming what is known
    cfg.write_text(json.dumps({**ref.config.to_dict(), "architectures": ["NoSuchForCausalLM"]}))
    capsys.readouterr()
    assert migrate_main(["--hf_config", str(cfg), "--output", str(tmp_path / "y.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no family reads architectures ['NoSuchForCausalLM']" in err and "MistralForCausalLM" in err


def test_internlm2_style_folder_passes_parity(tmp_path, monkeypatch):
    from mf_ext.registry import load_plugin

    monkeypatch.chdir(tmp_path)
    plugin = load_plugin(write_internlm2_family(tmp_path / "families" / "internlm2_like"))
    src = reference_checkpoint(plugin.family, reference_model(plugin.family, "gqa2"), tmp_path / "hf")
    assert "model.layers.0.attention.wqkv.weight" in read_st_dir(src)  # the remote-code layout, from to_format
    plugin.convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    plugin.convert_ms_to_pt(tmp_path / "w.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(tmp_path / "back") == read_st_dir(src)
    check_parity(plugin, "gqa4", tmp_path / "parity")


def test_a_wrong_wqkv_packing_round_trips_but_fails_parity(tmp_path, monkeypatch):
    from mf_ext.registry import load_plugin

    monkeypatch.chdir(tmp_path)
    bad = load_plugin(write_internlm2_family(tmp_path / "bad" / "internlm2_like", packing="concat"))
    src = reference_checkpoint(bad.family, reference_model(bad.family, "gqa4"), tmp_path / "hf")
    bad.convert_pt_to_ms(src, tmp_path / "w.ckpt", progress=False)
    bad.convert_ms_to_pt(tmp_path / "w.ckpt", tmp_path / "back", progress=False)
    assert read_st_dir(tmp_path / "back") == read_st_dir(src)  # a round trip cannot see it ...
    with pytest.raises(AssertionError, match="max \\|delta logits\\|"):  # ... the reference can
        check_parity(bad, "gqa4", tmp_path / "parity")
