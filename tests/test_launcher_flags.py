"""run_mindformer_ext.py takes every flag of MindFormers r1.8.0's run_mindformer.py and sets the YAML key it sets.

The table below is r1.8.0's argparse definitions (``git show r1.8.0:run_mindformer.py``), written out by hand since
CI has no network: each flag, a value, and the nested key run_mindformer.py's ``main`` block assigns it to.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from mf_ext.config import apply_overrides, parse_overrides
from mf_ext.launcher import build_parser, flag_updates, parse_args

# Every flag r1.8.0's run_mindformer.py defines (parser.add_argument), in its order.
R180_FLAGS = (
    "--config", "--mode", "--device_id", "--device_target", "--run_mode", "--do_eval", "--train_dataset_dir",
    "--eval_dataset_dir", "--predict_data", "--modal_type", "--predict_batch_size", "--adapter_id",
    "--load_checkpoint", "--src_strategy_path_or_dir", "--auto_trans_ckpt", "--transform_process_num",
    "--only_save_strategy", "--resume_training", "--strategy_load_checkpoint", "--remote_save_url", "--seed",
    "--use_parallel", "--profile", "--options", "--epochs", "--batch_size", "--gradient_accumulation_steps",
    "--sink_mode", "--num_samples", "--output_dir", "--register_path", "--do_sample", "--trust_remote_code",
)  # fmt: skip

# (flag and values, YAML key run_mindformer.py sets, the value it holds). "STRATEGY" stands for a strategy file.
TABLE = [
    (["--mode", "1"], "context.mode", 1),
    (["--device_id", "3"], "context.device_id", 3),
    (["--device_target", "CPU"], "context.device_target", "CPU"),
    (["--run_mode", "finetune"], "run_mode", "finetune"),
    (["--run_mode", "predict_with_train_model"], "run_mode", "predict_with_train_model"),
    (["--do_eval", "True"], "do_eval", True),
    (["--train_dataset_dir", "d/train.mindrecord"], "train_dataset.data_loader.dataset_dir", "d/train.mindrecord"),
    (["--eval_dataset_dir", "d/eval.mindrecord"], "eval_dataset.data_loader.dataset_dir", "d/eval.mindrecord"),
    (["--predict_data", "hello", "a\\nb"], "input_data", ["hello", "a\nb"]),
    (
        ["--predict_data", "cat.jpg", "what is it?", "--modal_type", "image", "Text"],
        "input_data",
        [[{"image": "cat.jpg"}, {"text": "what is it?"}]],
    ),
    (["--predict_batch_size", "4"], "predict_batch_size", 4),
    (["--adapter_id", "lora_a", "lora_b"], "adapter_id", ["lora_a", "lora_b"]),
    (["--load_checkpoint", "w.ckpt"], "load_checkpoint", "w.ckpt"),
    (["--src_strategy_path_or_dir", "strategy/"], "src_strategy_path_or_dir", "strategy/"),
    (["--auto_trans_ckpt", "True"], "auto_trans_ckpt", True),
    (["--transform_process_num", "2"], "transform_process_num", 2),
    (["--only_save_strategy", "false"], "only_save_strategy", False),
    (["--resume_training", "True"], "resume_training", True),
    (["--resume_training", "llama_rank_0-3_10.ckpt"], "resume_training", "llama_rank_0-3_10.ckpt"),
    (["--strategy_load_checkpoint", "STRATEGY"], "parallel.strategy_ckpt_load_file", "STRATEGY"),
    (["--remote_save_url", "obs://bucket/run"], "remote_save_url", "obs://bucket/run"),
    (["--seed", "7"], "seed", 7),
    (["--use_parallel", "True"], "use_parallel", True),
    (["--profile", "True"], "profile", True),
    (["--options", "model.model_config.seq_length=64"], "model.model_config.seq_length", 64),
    (["--epochs", "3"], "runner_config.epochs", 3),
    (["--batch_size", "4"], "runner_config.batch_size", 4),
    (["--gradient_accumulation_steps", "8"], "runner_config.gradient_accumulation_steps", 8),
    (["--sink_mode", "False"], "runner_config.sink_mode", False),
    (["--num_samples", "10"], "train_dataset.data_loader.num_samples", 10),
    (["--num_samples", "10"], "eval_dataset.data_loader.num_samples", 10),
    (["--output_dir", "runs/a"], "output_dir", "runs/a"),
    (["--do_sample", "True"], "model.model_config.do_sample", True),
    (["--trust_remote_code", "True"], "trust_remote_code", True),
]

YAML = {
    "run_mode": "predict",
    "runner_config": {"epochs": 1, "batch_size": 1},
    "train_dataset": {"data_loader": {"type": "MindDataset", "dataset_dir": ""}},
    "eval_dataset": {"data_loader": {"type": "MindDataset", "dataset_dir": ""}},
    "model": {"model_config": {"seq_length": 32}},
}


def nested(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        assert isinstance(node, dict) and part in node, f"{key!r} not set (missing {part!r})"
        node = node[part]
    return node


def as_set(argv: list[str], yaml_dict: dict) -> dict:
    """The YAML after our parser's flags and overrides, as the launcher applies them (no MindFormers needed)."""
    args = parse_args(["--config", "x.yaml", *argv])
    cfg = copy.deepcopy(yaml_dict)
    apply_overrides(cfg, flag_updates(args, cfg))
    apply_overrides(cfg, parse_overrides(args.overrides))
    return cfg


def test_every_r180_flag_is_accepted_and_in_the_table():
    ours = {s for action in build_parser()._actions for s in action.option_strings}
    assert set(R180_FLAGS) <= ours, sorted(set(R180_FLAGS) - ours)
    tabled = {argv[0] for argv, _, _ in TABLE} | {"--modal_type"}
    # --config names the file, --register_path finds the plug-ins: neither sets a YAML key
    assert set(R180_FLAGS) - {"--config", "--register_path"} <= tabled


@pytest.mark.parametrize(("argv", "key", "expected"), TABLE, ids=[f"{a[0]}->{k}" for a, k, _ in TABLE])
def test_flag_sets_run_mindformer_key(tmp_path, argv, key, expected):
    if "STRATEGY" in argv:
        strategy = tmp_path / "ckpt_strategy_rank_0.ckpt"
        strategy.write_bytes(b"x")
        argv = [str(strategy) if a == "STRATEGY" else a for a in argv]
        expected = str(strategy)
    cfg = as_set(argv, YAML)
    assert nested(cfg, key) == expected
    top = key.split(".")[-1]
    if "." in key:  # today's bug: run_mindformer.py's nested keys landed at the top level
        assert top not in cfg or top == key


def test_strategy_folder_stands_for_its_ckpt(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "ckpt_strategy_rank_0.ckpt").write_bytes(b"x")
    cfg = as_set(["--strategy_load_checkpoint", str(tmp_path)], YAML)
    assert nested(cfg, "parallel.strategy_ckpt_load_file") == str(tmp_path / "ckpt_strategy_rank_0.ckpt")


def test_num_samples_only_for_dataset_sections_the_yaml_has():
    cfg = as_set(["--num_samples", "10"], {"run_mode": "eval", "eval_dataset": {"data_loader": {"type": "X"}}})
    assert cfg["eval_dataset"]["data_loader"]["num_samples"] == 10
    assert "train_dataset" not in cfg


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("fp16", "float16"), ("float16", "float16"), ("bf16", "bfloat16"), ("FP32", "float32"), ("half", "float16")],
)
def test_convert_dtype_takes_mf_ext_convert_spellings(spelling, canonical):
    assert parse_args(["--config", "x.yaml", "--convert_dtype", spelling]).convert_dtype == canonical


def test_convert_dtype_refuses_unknown(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["--config", "x.yaml", "--convert_dtype", "int8"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --convert_dtype: expected float32, float16")


def test_flags_land_nested_through_mindformers_config(tmp_path):
    """The real load path: MindFormerConfig with run_mindformer.py's run-mode template, then our flags."""
    from mf_ext.config import load_config_ex

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(YAML))
    argv = ["--config", str(path), "--run_mode", "eval", "--sink_mode", "False", "--num_samples", "5"]
    argv += ["--gradient_accumulation_steps", "4", "--adapter_id", "a", "b", "--model.model_config.seq_length", "64"]
    args = parse_args(argv)
    cfg, _ = load_config_ex(args.config, None, args.overrides, flags=lambda raw: flag_updates(args, raw))
    assert cfg.run_mode == "eval"
    assert cfg.metric["type"] == "PerplexityMetric"  # the eval template run_mindformer.py's run_mode selects
    assert cfg.runner_config.sink_mode is False and cfg.runner_config.gradient_accumulation_steps == 4
    assert cfg.eval_dataset.data_loader.num_samples == 5
    assert cfg.adapter_id == ["a", "b"] and cfg.model.model_config.seq_length == 64
    assert "sink_mode" not in cfg and "num_samples" not in cfg and "gradient_accumulation_steps" not in cfg


def test_help_lists_r180_flags_fast():
    text = build_parser().format_help()
    for flag in R180_FLAGS:
        assert flag in text
    assert "``" not in text
