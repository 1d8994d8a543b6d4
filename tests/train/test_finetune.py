"""Finetune on CPU: launcher end to end (--convert), loss goes down, resume, export to HF, LoRA + PEFT, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ft_helpers import PLUGIN, YAML, hf_logits, make_workspace, ms_logits, read_hf_config, run_launcher, step_losses  # noqa: E402


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("ft"))


def _cfg(ws, *overrides: str):
    from mf_ext.api import prepare

    cfg, _entries, ckpt = prepare(str(YAML), str(PLUGIN), convert=str(ws["hf"]), overrides=list(overrides))
    return cfg, ckpt


def _model_only(ckpt: Path, out: Path) -> Path:
    import mindspore as ms

    from mf_ext.train.export import model_params

    params = model_params(ckpt)
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], str(out))
    return out


def test_launcher_finetune_loss_drops_then_export_matches_hf(ws, tmp_path):
    out = tmp_path / "run"
    r = run_launcher(
        "--config", str(YAML), "--register_path", str(PLUGIN), "--run_mode", "finetune", "--convert", str(ws["hf"]),
        "--train_dataset", str(ws["data"]), "--output_dir", str(out), "--epochs", "2", "--batch_size", "4",
        "--lr_schedule.learning_rate", "0.003",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    losses = step_losses(r.stdout)
    assert len(losses) == 20  # 40 demo rows / batch 4 x 2 epochs
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:2]), losses
    ckpt = out / "checkpoint" / "rank_0" / "llama3_1_rank_0-2_10.ckpt"
    assert ckpt.is_file() and Path(str(ckpt) + ".config.json").is_file()
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temporaries left

    # export merged weights to HF; HF transformers on them == our MindSpore model on the finetuned weights
    from mf_ext.api import build_model_from_config
    from mf_ext.registry import load_plugin
    from mf_ext.train.export import export_merged_hf

    plugin = load_plugin(str(PLUGIN))
    hf_out = export_merged_hf(ckpt, tmp_path / "hf_ft", plugin)
    # `mf-ext convert ms_to_hf` straight on the training checkpoint (it skips the optimizer state): same tensors
    from safetensors.numpy import load_file

    plugin.convert_ms_to_pt(str(ckpt), str(tmp_path / "hf_cli"), progress=False, print_fn=lambda *_: None)
    ours_st, cli_st = (
        load_file(str(hf_out / "model.safetensors")),
        load_file(str(tmp_path / "hf_cli" / "model.safetensors")),
    )
    assert ours_st.keys() == cli_st.keys() and all(np.array_equal(ours_st[k], cli_st[k]) for k in ours_st)
    cfg, _ = _cfg(ws)
    model = build_model_from_config(cfg, checkpoint=_model_only(ckpt, tmp_path / "ft.ckpt"))
    ids = np.random.default_rng(0).integers(0, 384, size=(2, 24))
    ours, theirs = ms_logits(model, ids), hf_logits(hf_out, ids)
    assert np.abs(ours - theirs).max() <= 1e-4
    # and the weights did move: the original HF model gives different logits
    assert np.abs(hf_logits(ws["hf"], ids) - theirs).max() > 1e-2

    # predict straight from the training checkpoint (optimizer state skipped): greedy tokens == HF on the export
    import torch
    from transformers import AutoModelForCausalLM

    from mf_ext.generation import generate

    raw = build_model_from_config(cfg, checkpoint=ckpt)
    prompt = ids[:1, :8]
    ours_gen = generate(raw, prompt, max_new_tokens=12)
    hf_model = AutoModelForCausalLM.from_pretrained(str(hf_out), dtype=torch.float32)
    hf_gen = hf_model.generate(torch.tensor(prompt), max_new_tokens=12, do_sample=False, eos_token_id=None)
    np.testing.assert_array_equal(ours_gen, hf_gen.numpy())


def test_resume_equals_uninterrupted(ws, tmp_path):
    from mf_ext.train import finetune
    from mf_ext.train.export import model_params

    common = ["runner_config.epochs=2", "runner_config.batch_size=8", "lr_schedule.learning_rate=0.003"]
    cfg, ckpt = _cfg(ws, *common)
    straight = finetune(cfg, train_dataset=ws["data"], output_dir=tmp_path / "a", load_checkpoint=ckpt, progress=False)
    first = finetune(
        cfg, train_dataset=ws["data"], output_dir=tmp_path / "b", load_checkpoint=ckpt, max_steps=3, progress=False
    )
    assert first.steps == 3
    second = finetune(
        cfg, train_dataset=ws["data"], output_dir=tmp_path / "b", load_checkpoint=ckpt, resume=True, progress=False
    )
    assert (second.start_step, second.steps, straight.steps) == (3, 10, 10)
    assert second.losses == pytest.approx(straight.losses[3:], abs=1e-6)
    a, b = model_params(straight.checkpoints[-1]), model_params(second.checkpoints[-1])
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_lora_count_frozen_base_exact_merge_and_peft(ws, tmp_path, capsys):
    import mindspore as ms
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mf_ext.registry import load_plugin
    from mf_ext.train import finetune
    from mf_ext.train.export import export_merged_hf, export_peft, model_params

    rank, alpha = 4, 8
    cfg, ckpt = _cfg(
        ws, "runner_config.epochs=1", "runner_config.batch_size=4", "lr_schedule.learning_rate=0.01",
        "model.model_config.pet_config.pet_type=lora", f"model.model_config.pet_config.lora_rank={rank}",
        f"model.model_config.pet_config.lora_alpha={alpha}",
        "model.model_config.pet_config.target_modules=.*wq|.*wv|.*w2",
    )  # fmt: skip
    res = finetune(cfg, train_dataset=ws["data"], output_dir=tmp_path / "lora", load_checkpoint=ckpt, progress=False)
    # trainable parameter count: rank * (in + out) for every targeted linear, from the HF config's shapes
    hc = read_hf_config(ws["hf"])
    h, head_dim = hc["hidden_size"], hc["hidden_size"] // hc["num_attention_heads"]
    per_layer = rank * ((h + h) + (h + hc["num_key_value_heads"] * head_dim) + (hc["intermediate_size"] + h))
    trainable = sum(int(np.prod(p.shape)) for p in res.model.trainable_params())
    assert trainable == hc["num_hidden_layers"] * per_layer
    assert len(res.lora_targets) == 3 * hc["num_hidden_layers"]
    assert np.mean(res.losses[-3:]) < np.mean(res.losses[:2])

    base = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(ckpt)).items()}
    trained = model_params(res.checkpoints[-1])
    for k, v in base.items():  # every base weight unchanged
        np.testing.assert_array_equal(trained[k], v, err_msg=k)
    lora = {k: v for k, v in trained.items() if ".lora_" in k}
    assert len(lora) == 2 * len(res.lora_targets)
    assert all(np.abs(v).max() > 0 for k, v in lora.items() if k.endswith("lora_b"))  # B moved away from zero

    plugin = load_plugin(str(PLUGIN))
    merged_dir = export_merged_hf(res.checkpoints[-1], tmp_path / "merged", plugin, lora_scale=alpha / rank)
    from safetensors.numpy import load_file

    merged = {}
    for f in merged_dir.glob("*.safetensors"):
        merged.update(load_file(str(f)))
    scale = np.float32(alpha / rank)
    for t in res.lora_targets:  # merged == base + scale * B @ A, exactly (fp32)
        layer = t.split(".")[2]
        hf_name = {
            "wq": "self_attn.q_proj", "wv": "self_attn.v_proj", "w2": "mlp.down_proj",
        }[t.rsplit(".", 1)[1]]  # fmt: skip
        want = base[t + ".weight"] + scale * (trained[t + ".lora_b"] @ trained[t + ".lora_a"])
        np.testing.assert_array_equal(merged[f"model.layers.{layer}.{hf_name}.weight"], want, err_msg=t)

    # the trainer recorded rank and alpha beside the checkpoint: export needs neither flag (issue 8 item 11)
    import json
    import shutil

    from mf_ext.train.export import main as export_main

    sidecar = Path(str(res.checkpoints[-1]) + ".config.json")
    recorded = json.loads(sidecar.read_text())["mf_ext_lora"]
    assert (recorded["rank"], recorded["alpha"]) == (rank, alpha)
    argv = ["--register_path", str(PLUGIN), "--checkpoint", str(res.checkpoints[-1])]
    assert export_main([*argv, "--output", str(tmp_path / "merged_cli")]) == 0
    merged_cli = {}
    for f in (tmp_path / "merged_cli").glob("*.safetensors"):
        merged_cli.update(load_file(str(f)))
    assert merged_cli.keys() == merged.keys()
    for k in merged:
        np.testing.assert_array_equal(merged_cli[k], merged[k], err_msg=k)
    assert "mf_ext_lora" not in json.loads((tmp_path / "merged_cli" / "config.json").read_text())
    # a checkpoint whose .config.json records no LoRA settings: the error names the flags that exist
    bare = tmp_path / "bare.ckpt"
    shutil.copy(res.checkpoints[-1], bare)
    cfg_bare = json.loads(sidecar.read_text())
    cfg_bare.pop("mf_ext_lora")
    Path(str(bare) + ".config.json").write_text(json.dumps(cfg_bare))
    capsys.readouterr()
    assert (
        export_main(["--register_path", str(PLUGIN), "--checkpoint", str(bare), "--output", str(tmp_path / "x")]) == 2
    )
    err = capsys.readouterr().err
    assert "pass --lora_rank R --lora_alpha A" in err and "lora_scale" not in err, err
    assert not (tmp_path / "x").exists()

    # PEFT adapter on the base HF model gives the merged model's logits
    adapter = export_peft(res.checkpoints[-1], tmp_path / "adapter", plugin, cfg=cfg, base_model=str(ws["hf"]))
    ids = np.random.default_rng(1).integers(0, 384, size=(2, 20))
    base_hf = AutoModelForCausalLM.from_pretrained(str(ws["hf"]), dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base_hf, str(adapter)).eval()
    with torch.no_grad():
        peft_logits = peft_model(torch.tensor(ids)).logits.numpy()
    assert np.abs(peft_logits - hf_logits(merged_dir, ids)).max() <= 1e-4


def test_bad_inputs_are_one_line_errors(ws, tmp_path):
    from mf_ext.api import prepare
    from mf_ext.config import ConfigError
    from mf_ext.train import finetune

    cfg, ckpt = _cfg(ws, "runner_config.batch_size=64")
    with pytest.raises(ConfigError, match=r"does not exist"):
        finetune(cfg, train_dataset=tmp_path / "missing.mindrecord", output_dir=tmp_path / "o", load_checkpoint=ckpt)
    with pytest.raises(ConfigError, match=r"has 40 rows, fewer than batch_size 64 x 1 device"):
        finetune(cfg, train_dataset=ws["data"], output_dir=tmp_path / "o", load_checkpoint=ckpt, progress=False)
    assert not (tmp_path / "o" / "checkpoint").exists()
    with pytest.raises(ConfigError, match=r"finetune needs a dataset"):
        finetune(cfg, output_dir=tmp_path / "o", load_checkpoint=ckpt)
    empty = tmp_path / "hf_empty"
    empty.mkdir()
    (empty / "config.json").write_text((ws["hf"] / "config.json").read_text())
    with pytest.raises(ConfigError, match=r"holds no weights"):
        prepare(str(YAML), str(PLUGIN), convert=str(empty))
    bad = _cfg(ws, "model.model_config.pet_config.pet_type=lora", "model.model_config.pet_config.target_modules=.*nope")
    with pytest.raises(ConfigError, match=r"target_modules: '\.\*nope' matches no linear layer"):
        finetune(bad[0], train_dataset=ws["data"], output_dir=tmp_path / "o", load_checkpoint=ckpt)


def test_mindformers_trainer_backend_on_cpu(ws, tmp_path):
    """MindFormers' own Trainer runs our model on CPU (CPU overflow check); same first-step loss as our step."""
    from mf_ext.train import finetune
    from mf_ext.train.export import model_params

    common = ["runner_config.epochs=1", "runner_config.batch_size=4", "lr_schedule.learning_rate=0.003",
              "train_dataset.data_loader.shuffle=False"]  # fmt: skip
    cfg, ckpt = _cfg(ws, *common, "trainer_backend=mindformers")
    res = finetune(cfg, train_dataset=ws["data"], output_dir=tmp_path / "mf", load_checkpoint=ckpt, progress=False)
    assert len(res.losses) == 10
    assert np.mean(res.losses[-3:]) < 0.95 * res.losses[0]
    last = tmp_path / "mf" / "checkpoint" / "rank_0" / "llama3_1_rank_0-1_10.ckpt"
    assert last.is_file()
    trained, base = model_params(last), {k: v for k, v in model_params(ckpt).items()}
    assert trained.keys() == base.keys()  # optimizer state, loss scale, counters all filtered out
    assert max(float(np.abs(trained[k] - base[k]).max()) for k in base) > 1e-3
    ours = finetune(_cfg(ws, *common)[0], train_dataset=ws["data"], output_dir=tmp_path / "ours",
                    load_checkpoint=ckpt, max_steps=1, progress=False)  # fmt: skip
    assert ours.losses[0] == pytest.approx(res.losses[0], abs=1e-5)
