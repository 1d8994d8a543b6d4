"""run_mindformer_ext.py on self-written folders in the layouts of MindFormers' own research folders: the predicted
text equals HF transformers' greedy text for the same weights, with --load_checkpoint and with --convert."""

from __future__ import annotations

from tests.foreign.foreign_helpers import (
    hf_greedy_text,
    one_error_line,
    predict_args,
    run_launcher,
    tinyfactory_folder,
    tinyllama_folder,
    write,
)

PROMPT, N = "The keeper climbed the stairs", 10


def test_tokenizer_only_auto_register_over_builtin_llama(tiny, tmp_path):
    # research/llama3_1 (r1.8.0): MindFormers' LlamaForCausalLM, is_dynamic False, an Ascend YAML with use_past;
    # files importing each other as siblings and as research.tinyllama.*
    from mindformers.models.llama.convert_weight import convert_pt_to_ms as mindformers_convert

    folder = tinyllama_folder(tmp_path / "mf_root", tiny.tok)
    yaml_path = folder / "predict_tinyllama.yaml"
    expected = hf_greedy_text(tiny.hf, tiny.tok, PROMPT, N)

    # weights converted by MindFormers' own Llama converter: independent of mf-ext
    ckpt = tmp_path / "mf_llama.ckpt"
    mindformers_convert(str(tiny.hf), str(ckpt))
    res = run_launcher(
        predict_args(yaml_path, folder, tmp_path / "out1", PROMPT, N, "--load_checkpoint", str(ckpt)),
        tmp_path,
        tmp_path / "cache",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "LlamaForCausalLM runs with use_past True -> False" in res.stderr  # said, not silent
    assert (tmp_path / "out1" / "text_generation_result.txt").read_text().strip() == expected

    # --convert: the folder has no converter, the built-in family reading config.json converts
    res = run_launcher(
        predict_args(yaml_path, folder, tmp_path / "out2", PROMPT, N, "--convert", str(tiny.hf)),
        tmp_path,
        tmp_path / "cache",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "converting" in res.stdout and "llama3_1/convert_weight.py" in res.stdout
    assert (tmp_path / "out2" / "text_generation_result.txt").read_text().strip() == expected


def test_factory_arch_mindformers_converter_and_qkv_concat(tiny, tmp_path):
    # research/deepseek3's factory model.arch; a converter called as MindFormers calls it (MindSpore dtype) that
    # fuses q/k/v as the YAML's qkv_concat: True asks
    from mf_ext.convert.cli import main as convert_main

    folder = tinyfactory_folder(tmp_path / "mf_root", tiny.tok)
    yaml_path = folder / "predict_tinyfactory.yaml"
    expected = hf_greedy_text(tiny.hf, tiny.tok, PROMPT, N)

    res = run_launcher(
        predict_args(
            yaml_path, folder, tmp_path / "out1", PROMPT, N, "--convert", str(tiny.hf), "--convert_dtype", "float32"
        ),
        tmp_path,
        tmp_path / "cache",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "tinyfactory/convert_weight.py" in res.stdout  # the model's folder, not the tokenizer's
    assert (tmp_path / "out1" / "text_generation_result.txt").read_text().strip() == expected

    ckpt = tmp_path / "fused.ckpt"
    args = ["hf_to_ms", "--register_path", str(folder), "--input_path", str(tiny.hf), "--output_path", str(ckpt)]
    assert convert_main([*args, "--qkv_concat", "--dtype", "fp32"]) == 0
    import mindspore as ms

    names = set(ms.load_checkpoint(str(ckpt)))
    assert "model.layers.0.attention.w_qkv.weight" in names and "model.layers.0.attention.wq.weight" not in names
    res = run_launcher(
        predict_args(yaml_path, folder, tmp_path / "out2", PROMPT, N, "--load_checkpoint", str(ckpt)),
        tmp_path,
        tmp_path / "cache",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "out2" / "text_generation_result.txt").read_text().strip() == expected


IGNORING_CONVERTER = """
    import mindspore as ms


    def convert_pt_to_ms(input_path, output_path, dtype=None, **kwargs):
        # qwen2_5 / telechat2 style: takes **kwargs, never reads qkv_concat
        ms.save_checkpoint([], output_path)
        return True
"""


def test_qkv_concat_a_converter_ignores_is_refused_in_one_line(tiny, tmp_path):
    folder = tinyfactory_folder(tmp_path / "mf_root", tiny.tok)
    write(folder, {"convert_weight.py": IGNORING_CONVERTER})
    cache = tmp_path / "cache"
    res = run_launcher(
        predict_args(folder / "predict_tinyfactory.yaml", folder, tmp_path / "o", PROMPT, N, "--convert", str(tiny.hf)),
        tmp_path,
        cache,
    )
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert "convert_weight.py" in line and "cannot honour qkv_concat=True" in line
    assert "model.model_config.qkv_concat in the YAML" in line
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing converted, nothing left


def test_research_import_outside_a_mindformers_root_is_one_line(tiny, tmp_path):
    # a folder outside any MindFormers root importing research.<x>: one line naming the folder and what it needs
    folder = tinyllama_folder(tmp_path / "mf_root", tiny.tok)
    lone = tmp_path / "lone"
    lone.mkdir()
    for f in folder.iterdir():
        (lone / f.name).write_text(f.read_text())
    res = run_launcher(
        predict_args(lone / "predict_tinyllama.yaml", lone, tmp_path / "out", PROMPT, N, "--convert", str(tiny.hf)),
        tmp_path,
        tmp_path / "cache",
    )
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert "research.tinyllama" in line and "MindFormers root" in line and str(lone) in line
