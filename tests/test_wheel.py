"""Families are found wherever mf-ext is installed: a real wheel of this checkout, installed with ``pip --target``
into an empty folder and run from another folder (no source tree in sight), lists every built-in family and
converts with ``--model``; a third-party family built and installed as its own wheel (entry point group
``mf_ext.families``) is found beside them. The wheel ships the family folders as ``mf_ext_families``, never as a
top-level ``research`` package (that would shadow a MindFormers checkout's ``research.<model>`` imports).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mf_ext.registry import builtin_plugins
from tests.family_parity import reference_checkpoint, reference_model
from tests.new_family import write_family

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("mf_ext", "research", "pyproject.toml", "setup.py", "README.md")


def _pip(*args: str, cwd: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def _build_and_install(project: Path, site: Path) -> Path:
    wheels = project.parent / f"{project.name}_wheel"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(project), cwd=project.parent)
    (wheel,) = wheels.glob("*.whl")
    _pip("install", "--no-deps", "-q", "--target", str(site), str(wheel), cwd=project.parent)
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """This checkout built as a wheel (from a copy: the build writes nothing into the checkout) and installed into
    an empty ``site`` folder, plus a third-party family package installed beside it."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "output"))
        else:
            shutil.copy2(p, src / name)
    site = root / "site"
    _build_and_install(src, site)
    # a family of its own, as a pip package: the Mistral-style test folder + an entry point
    third = root / "third"
    write_family(third / "mf_ext_mistral_like")
    (third / "mf_ext_mistral_like" / "__init__.py").write_text("")
    (third / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "mf-ext-mistral-like"
            version = "0.1"

            [project.entry-points."mf_ext.families"]
            mistral_like = "mf_ext_mistral_like"

            [tool.setuptools]
            packages = ["mf_ext_mistral_like"]

            [tool.setuptools.package-data]
            mf_ext_mistral_like = ["*.yaml"]
            """
        )
    )
    _build_and_install(third, site)
    work = root / "work"  # an unrelated folder to run from
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REGISTER_PATH")}
    env["PYTHONPATH"] = str(site)
    return {"site": site, "work": work, "env": env}


def _run(installed, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args), cwd=installed["work"], env=installed["env"], capture_output=True, text=True, timeout=600
    )


def test_the_wheel_ships_families_as_mf_ext_families_not_research(installed):
    site = installed["site"]
    assert not (site / "research").exists()
    assert sorted(p.name for p in (site / "mf_ext_families").iterdir() if p.is_dir()) == sorted(
        p.root.name for p in builtin_plugins()
    )
    assert (site / "mf_ext_families" / "llama3_1" / "predict_demo.yaml").is_file()
    assert (site / "mf_ext_families" / "llama3_1" / "demo" / "hf" / "model.safetensors").is_file()


def test_installed_mf_ext_lists_built_in_and_third_party_families(installed):
    code = "import mf_ext, mf_ext.registry as r; print(mf_ext.__file__); print(r.BUILTIN_RESEARCH)"
    out = _run(installed, sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    module_file, research = out.stdout.split()
    assert Path(module_file).is_relative_to(installed["site"])  # not the checkout, not an editable install
    assert Path(research) == installed["site"] / "mf_ext_families"
    out = _run(installed, sys.executable, "-m", "mf_ext.cli", "models")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    for plugin in builtin_plugins():
        assert plugin.family.name in rows, out.stdout
    assert "LlamaForCausalLM" in rows["llama3_1"] and str(installed["site"] / "mf_ext_families") in rows["llama3_1"]
    assert "MistralForCausalLM" in rows["mistral_like"] and "mf_ext_mistral_like" in rows["mistral_like"]


def test_installed_convert_by_model_name(installed, tmp_path):
    from mf_ext.registry import plugin_for_model

    fam = plugin_for_model("llama").family
    src = reference_checkpoint(fam, reference_model(fam, "mha_tied"), tmp_path / "hf")
    mf_ext_script = installed["site"] / "bin" / "mf-ext"
    out = _run(installed, str(mf_ext_script), "convert", "--model", "llama", "--input_path", str(src),
               "--output_path", str(tmp_path / "w.ckpt"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "w.ckpt").is_file()
    assert json.loads((tmp_path / "w.ckpt.config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    # the third-party family converts by its name too
    from mf_ext.registry import load_plugin

    third = load_plugin(installed["site"] / "mf_ext_mistral_like").family
    msrc = reference_checkpoint(third, reference_model(third, "gqa_no_window"), tmp_path / "mhf")
    out = _run(installed, sys.executable, "-m", "mf_ext.cli", "convert", "hf_to_ms", "--model", "mistral_like",
               "--input_path", str(msrc), "--output_path", str(tmp_path / "m.ckpt"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.ckpt").is_file()
