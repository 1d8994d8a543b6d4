"""The Family contract: declared once per folder, loaded without MindSpore, found built-in or installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _write_family(folder: Path, name: str, body: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "family.py").write_text(
        textwrap.dedent(
            f"""
            from mf_ext.family import Family, Reference
            FAMILY = Family(
                name={name!r},
                model_names=({name!r}, {name + "_alias"!r}),
                hf_architectures=({name.capitalize() + "ForCausalLM"!r},),
                reference=Reference(model="transformers:LlamaForCausalLM", config="transformers:LlamaConfig", tiny={{}}),
                {body}
            )
            """
        )
    )
    return folder


def test_families_load_without_heavy_imports():
    code = (
        "import sys\n"
        "from mf_ext.registry import all_families\n"
        "fams = [p.family for p in all_families()]\n"
        "assert any(f.name == 'llama3_1' and not f.legacy for f in fams), fams\n"
        "heavy = [m for m in ('mindspore', 'mindformers', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_family_lookup_by_hf_config_and_name(tmp_path):
    from mf_ext.registry import available_models, family_for_hf_config, load_plugin

    fam = load_plugin(REPO / "research" / "llama3_1").family
    assert fam.reads({"architectures": ["LlamaForCausalLM"]})
    assert fam.reads({"model_type": "llama"})
    assert not fam.reads({"architectures": ["Qwen2ForCausalLM"], "model_type": "llama"})
    assert family_for_hf_config({"architectures": ["LlamaForCausalLM"]}).family.name == "llama3_1"
    assert available_models()["llama3_1"].family is fam
    with pytest.raises(Exception, match="no family reads architectures .*NopeForCausalLM"):
        family_for_hf_config({"architectures": ["NopeForCausalLM"]})


def test_every_builtin_family_declares_a_reference_and_resolves_its_references():
    from mf_ext.registry import builtin_plugins

    for plugin in builtin_plugins():
        fam = plugin.family
        if fam.legacy:
            continue
        assert fam.reference is not None and fam.reference.tiny, fam.name
        for fmt in fam.specs:
            assert fam.spec(fmt).rules, (fam.name, fmt)
        if fam.hf_config is not None:
            to_mc, to_hf = fam.hf_mapping()
            assert callable(to_mc) and callable(to_hf)
        for preset in fam.load_presets().values():
            assert preset.name and preset.description, (fam.name, preset)
        for role in fam.yamls:
            assert fam.yaml(role).is_file(), (fam.name, role)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("classes={'weights': 'x.Y'},", "classes has unknown role"),
        ("yamls={'serve': 'x.yaml'},", "yamls has unknown role"),
        ("specs={'meta': 'weight_map:SPEC'},", "specs must declare the 'hf' format"),
    ],
)
def test_bad_declarations_are_one_line_errors(tmp_path, body, message):
    from mf_ext.errors import MfExtError
    from mf_ext.registry import load_plugin

    folder = _write_family(tmp_path / "fam", "fam", body)
    with pytest.raises(MfExtError, match=message):
        _ = load_plugin(folder).family


def test_family_py_without_family_object(tmp_path):
    from mf_ext.registry import RegistryError, load_plugin

    folder = tmp_path / "nofam"
    folder.mkdir()
    (folder / "family.py").write_text("X = 1\n")
    with pytest.raises(RegistryError, match=r"must assign FAMILY = mf_ext.family.Family"):
        _ = load_plugin(folder).family


def test_installed_family_is_found_through_its_entry_point(tmp_path):
    """A family shipped as its own package: an entry point in group mf_ext.families names it."""
    site = tmp_path / "site"
    _write_family(site / "acme_family", "acme")
    (site / "acme_family" / "__init__.py").write_text("")
    dist = site / "acme_family-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-family\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mf_ext.families]\nacme = acme_family\n")
    code = (
        "from mf_ext.registry import available_models, plugin_for_model\n"
        "assert plugin_for_model('acme_alias').family.name == 'acme'\n"
        "assert 'llama3_1' in available_models()\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": f"{site}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_mf_ext_models_lists_families():
    out = subprocess.run([sys.executable, "-m", "mf_ext.cli", "models"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if row.startswith("llama3_1 "))
    assert "LlamaForCausalLM" in line and "codellama" in line
