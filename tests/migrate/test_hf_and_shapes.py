"""Migrated YAMLs against real architectures: HF config.json round trips, and the migrated Llama-3-8B YAML against
the tensor shapes of a Llama-3-8B-shaped checkpoint (planned from safetensors headers; no 16 GB in memory)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml

from mf_ext.migrate.cli import migrate_main
from mf_ext.migrate.migrate import MigrationError, hf_config_to_yaml, migrate_text, yaml_to_hf_config
from mf_ext.migrate.validate import validate_file
from tests.hf_fixtures import LLAMA31_ROPE_SCALING

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "research" / "llama3_1"
FINETUNE = REPO / "configs" / "llama2" / "finetune_llama2_7b.yaml"

# Architecture fields of an HF Llama config.json: a round trip HF -> YAML -> HF must keep each of them.
ARCH_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
    "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings", "tie_word_embeddings",
    "bos_token_id", "eos_token_id", "pad_token_id", "hidden_act", "model_type",
)  # fmt: skip

# Meta's published config.json files (architecture fields), written out here as the independent reference.
LLAMA3_8B_HF = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": None, "max_position_embeddings": 8192, "tie_word_embeddings": False,
    "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "bfloat16",
}  # fmt: skip
LLAMA31_8B_INSTRUCT_HF = {
    **LLAMA3_8B_HF,
    "max_position_embeddings": 131072,
    "eos_token_id": [128001, 128008, 128009],
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}  # fmt: skip
LLAMA2_7B_HF = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "vocab_size": 32000, "rms_norm_eps": 1e-05, "max_position_embeddings": 4096,
    "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "torch_dtype": "float16",
}  # fmt: skip


def _tiny_hf(**kw) -> dict:
    from transformers import LlamaConfig

    base = dict(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=1024, rope_theta=500000.0, rms_norm_eps=1e-5)  # fmt: skip
    base.update(kw)
    return LlamaConfig(**base).to_dict()


HF_CASES = {
    "llama3_8b": LLAMA3_8B_HF,
    "llama3_1_8b_instruct": LLAMA31_8B_INSTRUCT_HF,
    "llama2_7b": LLAMA2_7B_HF,
    "tiny_gqa_tied": _tiny_hf(tie_word_embeddings=True),
    "tiny_mha_rope_scaling": _tiny_hf(num_key_value_heads=4, rope_scaling=dict(LLAMA31_ROPE_SCALING)),
    "tiny_mqa": _tiny_hf(num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=10000.0),
}


def _with_hf_defaults(hf: dict) -> dict:
    """What transformers itself reads from a config.json (fills absent fields with its defaults)."""
    from transformers import LlamaConfig

    return LlamaConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")}).to_dict()


@pytest.mark.parametrize("case", list(HF_CASES))
def test_hf_config_to_yaml_to_hf_config_keeps_every_architecture_field(case, tmp_path, capsys):
    hf = HF_CASES[case]
    src = tmp_path / "config.json"
    src.write_text(json.dumps(hf))
    out = tmp_path / "model.yaml"
    assert migrate_main(["--hf_config", str(src), "--register_path", str(PLUGIN), "--output", str(out), "-q"]) == 0
    data = yaml.safe_load(out.read_text())
    back = yaml_to_hf_config(data, PLUGIN)
    want = _with_hf_defaults(hf)
    got = _with_hf_defaults(back)
    for field in ARCH_FIELDS:
        assert got[field] == want[field], (field, got[field], want[field])
    # the written YAML names the plug-in's classes and passes validation
    assert data["model"]["model_config"]["auto_register"] == "llama3_1_config.Llama3Config"
    assert data["model"]["arch"]["auto_register"] == "llama3_1_model.Llama3ForCausalLM"
    assert data["processor"]["tokenizer"]["auto_register"] == "llama3_1_tokenizer.Llama3Tokenizer"
    report = validate_file(out, register_path=[str(PLUGIN)], hf_config=str(src))
    assert report.errors == []
    # seq_length: the pre-scaling context, capped by the maximum positions
    orig = (hf.get("rope_scaling") or {}).get("original_max_position_embeddings")
    assert data["model"]["model_config"]["seq_length"] == min(hf["max_position_embeddings"], orig or 10**9)


def test_validate_reports_yaml_that_disagrees_with_config_json(tmp_path):
    src = tmp_path / "config.json"
    src.write_text(json.dumps(LLAMA31_8B_INSTRUCT_HF))
    text = hf_config_to_yaml(LLAMA31_8B_INSTRUCT_HF, register_path=PLUGIN)
    text = text.replace("    num_layers: 32\n", "    num_layers: 30\n").replace("theta: 500000.0", "theta: 10000.0")
    (tmp_path / "x.yaml").write_text(text)
    errors = validate_file(tmp_path / "x.yaml", register_path=[str(PLUGIN)], hf_config=str(src)).errors
    assert errors == [
        "model.model_config: num_hidden_layers is 30 in the YAML but 32 in config.json",
        "model.model_config: rope_theta is 10000.0 in the YAML but 500000.0 in config.json",
    ]


def test_hf_config_bad_inputs(tmp_path, capsys):
    with pytest.raises(MigrationError, match="model_type 'gpt2' is not a Llama model"):
        hf_config_to_yaml({"model_type": "gpt2", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "vocab_size": 8}, register_path=PLUGIN, source="gpt2/config.json")  # fmt: skip
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    rc = migrate_main(["--hf_config", str(bad), "--output", str(tmp_path / "x.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "is not valid JSON" in err
    rc = migrate_main(["--hf_config", str(tmp_path), "--register_path", str(tmp_path / "nope"), "--output", "x.yaml"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--register_path" in err and "is not a folder" in err
    assert not (tmp_path / "x.yaml").exists()


def test_hf_config_onto_an_existing_yaml_keeps_its_settings(tmp_path):
    base = FINETUNE.read_text()
    text = hf_config_to_yaml(LLAMA31_8B_INSTRUCT_HF, register_path=PLUGIN, base=base)
    before, after = yaml.safe_load(base), yaml.safe_load(text)
    assert after["optimizer"] == before["optimizer"] and after["parallel_config"] == before["parallel_config"]
    assert "# learning-rate schedule" in text
    back = _with_hf_defaults(yaml_to_hf_config(after, PLUGIN))
    want = _with_hf_defaults(LLAMA31_8B_INSTRUCT_HF)
    assert all(back[f] == want[f] for f in ARCH_FIELDS)


# ------------------------------------------------------------------------------------- shapes vs a checkpoint
def hf_llama_shapes(hf: dict) -> dict[str, list[int]]:
    """HF tensor names -> shapes of a Llama checkpoint, from its config.json (transformers' layout)."""
    h, L = hf["hidden_size"], hf["num_hidden_layers"]
    heads, kv, inter, vocab = (
        hf["num_attention_heads"],
        hf["num_key_value_heads"],
        hf["intermediate_size"],
        hf["vocab_size"],
    )
    d = h // heads
    out = {"model.embed_tokens.weight": [vocab, h], "model.norm.weight": [h], "lm_head.weight": [vocab, h]}
    for i in range(L):
        p = f"model.layers.{i}."
        out |= {
            p + "self_attn.q_proj.weight": [heads * d, h], p + "self_attn.k_proj.weight": [kv * d, h],
            p + "self_attn.v_proj.weight": [kv * d, h], p + "self_attn.o_proj.weight": [h, heads * d],
            p + "mlp.gate_proj.weight": [inter, h], p + "mlp.up_proj.weight": [inter, h],
            p + "mlp.down_proj.weight": [h, inter],
            p + "input_layernorm.weight": [h], p + "post_attention_layernorm.weight": [h],
        }  # fmt: skip
    return out


def write_header_only_safetensors(folder: Path, shapes: dict[str, list[int]], dtype: str = "BF16") -> Path:
    """A valid safetensors file whose data section is a hole: the header is written, the file truncated to its
    full length (sparse on disk, nothing in memory)."""
    itemsize = {"BF16": 2, "F16": 2, "F32": 4}[dtype]
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = itemsize
        for s in shape:
            n *= s
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = folder / "model.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def expected_ms_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """MindFormers parameter names -> shapes, computed from a built model config object."""
    h, L, heads = cfg.hidden_size, cfg.num_layers, cfg.num_heads
    kv, d, inter, vocab = cfg.n_kv_heads, cfg.head_dim, cfg.ffn_hidden_size, cfg.vocab_size
    out = {"model.tok_embeddings.embedding_weight": (vocab, h), "model.norm_out.weight": (h,)}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = (vocab, h)
    for i in range(L):
        p = f"model.layers.{i}."
        out |= {
            p + "attention.wq.weight": (heads * d, h), p + "attention.wk.weight": (kv * d, h),
            p + "attention.wv.weight": (kv * d, h), p + "attention.wo.weight": (h, heads * d),
            p + "feed_forward.w1.weight": (inter, h), p + "feed_forward.w3.weight": (inter, h),
            p + "feed_forward.w2.weight": (h, inter),
            p + "attention_norm.weight": (h,), p + "ffn_norm.weight": (h,),
        }  # fmt: skip
    return out


@pytest.fixture(scope="module")
def migrated_8b(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "finetune_llama3_8b.yaml"
    path.write_text(migrate_text(FINETUNE.read_text(), "llama3_8b").text)
    return path


def _model_config(cfg):
    """Build the YAML's model config object through MindFormers' builder (as build_model does)."""
    import copy

    from mindformers.models.build_config import build_model_config

    return build_model_config(copy.deepcopy(cfg.model.model_config))


def test_expected_shapes_match_a_real_model_built_from_the_migrated_yaml(migrated_8b):
    """The name->shape formula used below is checked against the parameters of the plug-in's model, built from
    the migrated YAML with a tiny size override."""
    import mf_ext

    tiny = {"model.model_config." + k: v for k, v in dict(
        hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, vocab_size=256, intermediate_size=160,
        seq_length=32, compute_dtype="float32", use_flash_attention=False).items()}  # fmt: skip
    tiny["load_checkpoint"] = ""
    tiny["use_parallel"] = False
    model = mf_ext.load_model(str(migrated_8b), register_path=str(PLUGIN), device_target="CPU", overrides=tiny)
    assert type(model).__name__ == "Llama3ForCausalLM"
    real = {p.name: tuple(p.shape) for p in model.get_parameters()}
    assert real == expected_ms_shapes(model.config)


def test_migrated_llama3_8b_yaml_matches_a_llama3_8b_checkpoint(migrated_8b, tmp_path):
    from mf_ext.config import load_config
    from mf_ext.registry import load_plugin

    cfg = load_config(str(migrated_8b), register_path=str(PLUGIN))
    model_cfg = _model_config(cfg)
    assert type(model_cfg).__name__ == "Llama3Config"
    expected = expected_ms_shapes(model_cfg)

    ckpt = tmp_path / "Meta-Llama-3-8B"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(LLAMA3_8B_HF))
    st = write_header_only_safetensors(ckpt, hf_llama_shapes(LLAMA3_8B_HF))
    assert st.stat().st_size > 16 * 10**9 and st.stat().st_blocks * 512 < 10**7  # 16 GB, sparse

    # plan the conversion from headers only, with the architecture the migrated YAML describes
    yaml_arch = yaml_to_hf_config(yaml.safe_load(migrated_8b.read_text()), PLUGIN)
    plugin = load_plugin(PLUGIN)
    plan = plugin.convert_pt_to_ms(
        str(ckpt), str(tmp_path / "out.ckpt"), dry_run=True, hf_config=yaml_arch, print_fn=lambda *_: None
    )
    planned = {t.name: tuple(t.shape) for t in plan.targets}
    assert planned == expected
    assert len(planned) == 3 + 9 * 32
    assert planned["model.layers.0.attention.wk.weight"] == (1024, 4096)  # GQA: 8 kv heads of 128
    assert planned["model.tok_embeddings.embedding_weight"] == (128256, 4096)
    assert planned["model.layers.31.feed_forward.w1.weight"] == (14336, 4096)
    assert not (tmp_path / "out.ckpt").exists()
    # and the migrated YAML is Meta's Llama-3-8B architecture (its config.json has no pad token)
    got, want = _with_hf_defaults(yaml_arch), _with_hf_defaults(LLAMA3_8B_HF)
    assert {f: got[f] for f in ARCH_FIELDS if f != "pad_token_id"} == {
        f: want[f] for f in ARCH_FIELDS if f != "pad_token_id"
    }


LLAMA31_70B_HF = {
    **LLAMA31_8B_INSTRUCT_HF, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
    "num_attention_heads": 64, "eos_token_id": 128001,
}  # fmt: skip


def test_migrated_llama3_1_70b_yaml_matches_a_llama3_1_70b_checkpoint(tmp_path):
    """Same for 70B (a 141 GB sparse file): the 70B preset from the 7B predict YAML fits Meta's 70B shapes."""
    from mf_ext.config import load_config
    from mf_ext.registry import load_plugin

    migrated = tmp_path / "predict_llama3_1_70b.yaml"
    migrated.write_text(migrate_text((REPO / "configs/llama2/predict_llama2_7b.yaml").read_text(), "llama3_1_70b").text)
    expected = expected_ms_shapes(_model_config(load_config(str(migrated), register_path=str(PLUGIN))))
    ckpt = tmp_path / "Llama-3.1-70B"
    ckpt.mkdir()
    st = write_header_only_safetensors(ckpt, hf_llama_shapes(LLAMA31_70B_HF))
    assert st.stat().st_size > 140 * 10**9
    yaml_arch = yaml_to_hf_config(yaml.safe_load(migrated.read_text()), PLUGIN)
    plan = load_plugin(PLUGIN).convert_pt_to_ms(str(ckpt), str(tmp_path / "out.ckpt"), dry_run=True,
                                                hf_config=yaml_arch, print_fn=lambda *_: None)  # fmt: skip
    assert {t.name: tuple(t.shape) for t in plan.targets} == expected
    assert expected["model.layers.79.attention.wk.weight"] == (1024, 8192)
    assert all(_with_hf_defaults(yaml_arch)[f] == _with_hf_defaults(LLAMA31_70B_HF)[f]
               for f in ARCH_FIELDS if f not in ("bos_token_id", "eos_token_id", "pad_token_id"))  # fmt: skip


def test_unmigrated_llama2_yaml_does_not_match_the_llama3_checkpoint(tmp_path):
    """The check above can fail: the Llama 2 YAML's architecture is refused against the same headers."""
    from mf_ext.convert.errors import ConversionError
    from mf_ext.registry import load_plugin

    ckpt = tmp_path / "Meta-Llama-3-8B"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(LLAMA3_8B_HF))
    write_header_only_safetensors(ckpt, hf_llama_shapes(LLAMA3_8B_HF))
    llama2 = yaml.safe_load(FINETUNE.read_text())
    llama2["model"]["model_config"].pop("type")
    arch = yaml_to_hf_config(llama2, PLUGIN)
    with pytest.raises(ConversionError, match="has shape"):
        load_plugin(PLUGIN).convert_pt_to_ms(
            str(ckpt), str(tmp_path / "o.ckpt"), dry_run=True, hf_config=arch, print_fn=lambda *_: None
        )


def test_yaml_written_for_an_hf_config_runs_the_hf_weights_exactly(tmp_path):
    """End to end: HF checkpoint -> `mf-ext migrate --hf_config` -> YAML -> plug-in model with the converted weights
    gives HF transformers' logits. Wrong theta, eps, kv heads or rope scaling in the YAML would show here."""
    import numpy as np
    import torch
    from transformers import LlamaForCausalLM

    import mf_ext
    from mf_ext.registry import load_plugin
    from tests.hf_fixtures import make_hf_llama

    hf_dir = make_hf_llama(tmp_path / "hf", rope_scaling=dict(LLAMA31_ROPE_SCALING), rms_norm_eps=1e-6,
                           rope_theta=50000.0, num_kv_heads=1)  # fmt: skip
    yml = tmp_path / "model.yaml"
    assert migrate_main(["--hf_config", str(hf_dir), "--register_path", str(PLUGIN), "--output", str(yml), "-q"]) == 0
    ckpt = tmp_path / "model.ckpt"
    load_plugin(PLUGIN).convert_pt_to_ms(str(hf_dir), str(ckpt), progress=False)
    # the converter keeps config.json beside the ckpt, and loading takes the architecture from it: drop it, so only
    # the migrated YAML decides the architecture here
    (tmp_path / "model.ckpt.config.json").unlink()
    model = mf_ext.load_model(str(yml), register_path=str(PLUGIN), checkpoint=str(ckpt), device_target="CPU", mode=1)
    ids = np.random.default_rng(0).integers(0, 256, size=(1, 48))
    ours = mf_ext.logits(model, ids)
    with torch.no_grad():
        ref = LlamaForCausalLM.from_pretrained(hf_dir).eval()(torch.tensor(ids)).logits.float().numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4
    # negative control: the same YAML without the Llama 3.1 rope scaling gives different logits
    doc = yaml.safe_load(yml.read_text())
    del doc["model"]["model_config"]["rope_scaling"]
    (tmp_path / "no_scaling.yaml").write_text(yaml.safe_dump(doc))
    wrong = mf_ext.load_model(str(tmp_path / "no_scaling.yaml"), register_path=str(PLUGIN), checkpoint=str(ckpt),
                              device_target="CPU", mode=1)  # fmt: skip
    assert np.abs(mf_ext.logits(wrong, ids) - ref).max() > 1e-3


@pytest.mark.parametrize("name", ["predict_llama2_7b.yaml", "finetune_llama2_7b.yaml"])
def test_bundled_llama2_yamls_build_mindformers_own_llama(name):
    """The Llama 2 YAMLs are real MindFormers configs: they build MindFormers' built-in LlamaForCausalLM (tiny size
    override), with the parameter names and shapes the formula above gives (the ones our plug-in uses too)."""
    from types import SimpleNamespace

    import mf_ext

    size = dict(hidden_size=64, num_layers=2, num_heads=4, vocab_size=256, intermediate_size=160)
    overrides = {"model.model_config." + k: v for k, v in size.items()}
    overrides.update({"model.model_config.seq_length": 32, "model.model_config.compute_dtype": "float32",
                      "model.model_config.param_init_type": "float32", "model.model_config.use_past": False,
                      "model.model_config.use_flash_attention": False, "load_checkpoint": "", "use_parallel": False})  # fmt: skip
    model = mf_ext.load_model(str(REPO / "configs" / "llama2" / name), device_target="CPU", overrides=overrides)
    assert type(model).__module__.startswith("mindformers.") and type(model).__name__ == "LlamaForCausalLM"
    cfg = SimpleNamespace(**size, n_kv_heads=4, head_dim=16, ffn_hidden_size=160, tie_word_embeddings=False)
    assert {p.name: tuple(p.shape) for p in model.get_parameters()} == expected_ms_shapes(cfg)
