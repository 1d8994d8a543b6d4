"""Our family folders are real MindFormers research folders: MindFormers' own ``run_mindformer.py`` (r1.8.0, taken
from the MindFormers git mirror at test time, never committed) runs each family's demo YAML with ``--register_path``
and ``--load_checkpoint`` on CPU and prints the same text as our launcher.

Skipped (with the reason) where the mirror is absent, as in CI; research/README.md gives the same check as commands.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mf_ext.registry import builtin_plugins

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("MINDFORMERS_MIRROR", "/work/.mirror/mindspore-lab+mindformers/repo"))
TAG = "r1.8.0"
PROMPT = "On a small island at the edge of a cold grey sea"
DEMOS = [p for p in builtin_plugins() if p.family.yaml("demo") is not None]


@pytest.fixture(scope="module")
def run_mindformer(tmp_path_factory) -> Path:
    if not MIRROR.exists() or shutil.which("git") is None:
        pytest.skip(f"MindFormers git mirror not found at {str(MIRROR)!r} (set MINDFORMERS_MIRROR): manual check only")
    out = subprocess.run(
        ["git", "-C", str(MIRROR), "show", f"{TAG}:run_mindformer.py"], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        pytest.skip(f"cannot read {TAG}:run_mindformer.py from the mirror: {out.stderr.strip()[:200]}")
    script = tmp_path_factory.mktemp("mindformers") / "run_mindformer.py"
    script.write_text(out.stdout)
    return script


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("plugin", DEMOS, ids=lambda p: p.family.name)
def test_run_mindformer_prints_what_our_launcher_prints(plugin, run_mindformer, tmp_path):
    demo = plugin.family.yaml("demo")
    cfg = yaml.safe_load(demo.read_text())
    hf_dir = (demo.parent / cfg["convert"]).resolve()
    ckpt = tmp_path / "demo.ckpt"
    plugin.convert_pt_to_ms(str(hf_dir), str(ckpt), progress=False)
    options = []
    vocab = ((cfg.get("processor") or {}).get("tokenizer") or {}).get("vocab_file")
    if vocab and not Path(vocab).is_absolute():  # our launcher resolves it against the YAML; MindFormers does not
        options = ["--options", f"processor.tokenizer.vocab_file={(demo.parent / vocab).resolve()}"]
    common = ["--config", str(demo), "--register_path", str(plugin.root), "--load_checkpoint", str(ckpt)]

    theirs_dir, ours_dir = tmp_path / "mindformers", tmp_path / "ours"
    theirs_dir.mkdir(), ours_dir.mkdir()  # both write ./output (and MindFormers ./modules) into their cwd
    theirs = subprocess.run(
        [sys.executable, str(run_mindformer), *common, "--predict_data", PROMPT, *options],
        cwd=theirs_dir, env=_env(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stdout[-3000:] + theirs.stderr[-3000:]
    line = next(ln for ln in (theirs.stdout + theirs.stderr).splitlines() if "output result is:" in ln)
    their_text = ast.literal_eval(line.split("output result is:", 1)[1].strip())[0]["text_generation_text"][0]

    ours = subprocess.run(
        [sys.executable, str(REPO / "run_mindformer_ext.py"), *common, "--predict_data", PROMPT],
        cwd=ours_dir, env=_env(), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr[-3000:]
    our_text = (ours_dir / "output" / "text_generation_result.txt").read_text().strip()
    assert their_text.startswith(PROMPT) and len(their_text) > len(PROMPT) + 20
    assert their_text == our_text
