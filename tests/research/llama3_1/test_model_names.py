"""Yi, CodeLlama and DeepSeek-Coder checkpoints are HF ``LlamaForCausalLM`` ones: the llama3_1 family serves them by
name (``--model yi`` ...), with the Llama weight spec, and ``mf-ext models`` lists the names under llama3_1."""

from __future__ import annotations

import pytest

from tests.hf_fixtures import make_hf_llama

NAMES = ("yi", "codellama", "deepseek-coder", "deepseek_coder", "Yi")


@pytest.mark.parametrize("name", NAMES)
def test_registry_resolves_the_name_to_llama3_1(name):
    from mf_ext.registry import plugin_for_model

    plugin = plugin_for_model(name)
    assert plugin.family.name == "llama3_1" and plugin is plugin_for_model("llama")


def test_mf_ext_convert_by_each_name_writes_the_llama_checkpoint(tmp_path, capsys):
    from mf_ext.cli import main

    src = make_hf_llama(tmp_path / "hf", num_heads=4, num_kv_heads=2)

    def convert(name: str) -> bytes:
        out = tmp_path / f"{name}.ckpt"
        argv = ["convert", "--model", name, "--input_path", str(src), "--output_path", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        return out.read_bytes()

    want = convert("llama")
    for name in ("yi", "codellama", "deepseek-coder"):
        assert convert(name) == want, name
    capsys.readouterr()
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("llama3_1"))
    assert all(n in row for n in ("yi", "codellama", "deepseek-coder")), row
