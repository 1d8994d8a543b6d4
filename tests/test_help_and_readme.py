"""Help texts without RST markup, `mf-ext convert --print_config`, and README examples a newcomer can paste."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")

HELP_COMMANDS = [
    [str(REPO / "run_mindformer_ext.py")],
    ["-m", "mf_ext.train.export"],
    *(
        ["-m", "mf_ext.cli", *cmd.split()]
        for cmd in (
            "convert",
            "convert hf_to_ms",
            "convert ms_to_hf",
            "convert resplit",
            "verify",
            "data",
            "export",
            "migrate",
            "validate",
            "models",
        )
    ),
]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=[" ".join(c[-2:]) for c in HELP_COMMANDS])
def test_help_has_no_rst_markup(tmp_path, cmd):
    res = run([*cmd, "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "``" not in res.stdout, [line for line in res.stdout.splitlines() if "``" in line]


def test_convert_print_config_without_subcommand(tmp_path):
    res = run(["-m", "mf_ext.cli", "convert", "--print_config"], tmp_path)
    assert res.returncode == 0, res.stderr
    docs = list(yaml.safe_load_all(res.stdout))
    assert len(docs) == 3 and all("input_path" in d and "output_path" in d for d in docs)
    assert docs[0]["qkv_concat"] is False and docs[1]["lora_alpha"] == 16 and docs[2]["format"] == "safetensors"
    # each document is a --config for its subcommand
    (tmp_path / "resplit.yaml").write_text(yaml.safe_dump({**docs[2], "input_path": "a", "output_path": "b"}))
    res = run(["-m", "mf_ext.cli", "convert", "resplit", "--config", "resplit.yaml", "--print_config"], tmp_path)
    assert res.returncode == 0 and yaml.safe_load(res.stdout)["input_path"] == "a", res.stderr


def bash_blocks(text: str) -> list[str]:
    """The commands of README's bash/plain code blocks, continuation lines joined."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S)
    return [cmd for b in blocks for cmd in b.replace("\\\n", " ").splitlines() if cmd.strip()]


def test_readme_examples_write_relative_paths_and_predict_names_a_tokenizer():
    commands = bash_blocks(README)
    assert not [c for c in commands if "/tmp" in c]
    predict = [c for c in commands if "predict.yaml" in c and "run_mindformer_ext.py" in c]
    assert predict and all("--processor.tokenizer.vocab_file" in c for c in predict), predict


def test_readme_quick_start_is_two_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.S).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) == 2
    ci = (REPO / ".ci" / "run").read_text()
    for line in block.splitlines():  # CI runs them verbatim
        assert line.strip() in ci
