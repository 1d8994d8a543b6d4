"""`mf-ext migrate --config ... --to PRESET`: exact documented diffs, user settings and comments kept, bad inputs.

Pure text/YAML work: no MindSpore import, so this file runs in about a second.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mf_ext.migrate.cli import migrate_main
from mf_ext.migrate.migrate import MigrationError, migrate_text
from mf_ext.migrate.yaml_edit import YamlDocument, YamlEditError

REPO = Path(__file__).resolve().parents[2]
FINETUNE = REPO / "configs" / "llama2" / "finetune_llama2_7b.yaml"
PREDICT = REPO / "configs" / "llama2" / "predict_llama2_7b.yaml"

# The documented Llama 2 -> Llama 3 differences, written out here independently of mf_ext.migrate.presets.
LLAMA3_8B = {
    "seq_length": 8192,
    "n_kv_heads": 8,
    "vocab_size": 128256,
    "intermediate_size": 14336,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "pad_token_id": 128002,
    "theta": 500000.0,
    "max_position_embedding": 8192,
}
LLAMA31 = {
    "max_position_embedding": 131072,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
SIZE_70B = {"hidden_size": 8192, "num_layers": 80, "num_heads": 64, "intermediate_size": 28672}
EXPECTED_MODEL_CONFIG = {
    "llama3_8b": LLAMA3_8B,
    "llama3_1_8b": {**LLAMA3_8B, **LLAMA31},
    "llama3_70b": {**LLAMA3_8B, **SIZE_70B},
    "llama3_1_70b": {**LLAMA3_8B, **LLAMA31, **SIZE_70B},
}


def expected_dict(original: dict, preset: str) -> dict:
    """The full migrated config, built by hand from the original."""
    exp = copy.deepcopy(original)
    mc = exp["model"]["model_config"]
    mc.update(copy.deepcopy(EXPECTED_MODEL_CONFIG[preset]))
    mc["type"] = "Llama3Config"
    mc["auto_register"] = "llama3_1_config.Llama3Config"
    exp["model"]["arch"] = {"type": "Llama3ForCausalLM", "auto_register": "llama3_1_model.Llama3ForCausalLM"}
    tok = exp["processor"]["tokenizer"]
    del tok["unk_token"]
    tok.update(
        type="Llama3Tokenizer",
        auto_register="llama3_1_tokenizer.Llama3Tokenizer",
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|reserved_special_token_0|>",
    )
    exp["trainer"]["model_name"] = preset
    return exp


@pytest.mark.parametrize("preset", list(EXPECTED_MODEL_CONFIG))
@pytest.mark.parametrize("source", [FINETUNE, PREDICT], ids=["finetune", "predict"])
def test_migration_gives_exactly_the_documented_config(source: Path, preset: str):
    text = source.read_text()
    original = yaml.safe_load(text)
    result = migrate_text(text, preset, name=str(source))
    migrated = yaml.safe_load(result.text)
    assert migrated == expected_dict(original, preset)
    assert result.data == migrated
    # the shipped YAMLs describe Llama 2 7B: the migration really changed things
    assert original["model"]["model_config"]["vocab_size"] == 32000
    assert "n_kv_heads" not in original["model"]["model_config"]


USER_KEYS = [
    ("optimizer",),
    ("lr_schedule",),
    ("runner_config",),
    ("train_dataset",),
    ("parallel_config",),
    ("parallel",),
    ("recompute_config",),
    ("callbacks",),
    ("context",),
    ("load_checkpoint",),
    ("output_dir",),
    ("model", "model_config", "compute_dtype"),
    ("model", "model_config", "param_init_type"),
    ("model", "model_config", "batch_size"),
    ("model", "model_config", "rms_norm_eps"),
    ("model", "model_config", "use_flash_attention"),
    ("processor", "tokenizer", "vocab_file"),
    ("runner_wrapper",),
]


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def test_user_settings_survive_untouched():
    text = FINETUNE.read_text()
    # make the user's settings unusual so a "reset to defaults" would show
    doc = YamlDocument(text)
    doc.set(("lr_schedule", "learning_rate"), 3.5e-6)
    doc.set(("runner_config", "batch_size"), 7)
    doc.set(("parallel_config", "model_parallel"), 4)
    doc.set(("load_checkpoint",), "/data/my/llama.ckpt")
    text = doc.text
    before = yaml.safe_load(text)
    after = yaml.safe_load(migrate_text(text, "llama3_1_70b").text)
    for path in USER_KEYS:
        assert _get(after, path) == _get(before, path), path
    assert after["lr_schedule"]["learning_rate"] == 3.5e-6
    assert after["runner_config"]["batch_size"] == 7
    assert after["parallel_config"]["model_parallel"] == 4


def _comments(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        m = re.search(r"(?:^|\s)(#.*)$", line)
        if m:
            out.append(m.group(1))
    return out


@pytest.mark.parametrize("source", [FINETUNE, PREDICT], ids=["finetune", "predict"])
def test_comments_and_untouched_lines_survive(source: Path):
    text = source.read_text()
    new = migrate_text(text, "llama3_1_8b").text
    assert _comments(new) == [c for c in _comments(text) if "<unk>" not in c]  # same comments, same order
    # every removed line belongs to a key the migration owns
    owned = {
        "type", "auto_register", "model_name", "unk_token", "bos_token", "eos_token", "pad_token",
        *{k for v in EXPECTED_MODEL_CONFIG.values() for k in v},
    }  # fmt: skip
    removed = [ln for ln in difflib.ndiff(text.splitlines(), new.splitlines()) if ln.startswith("- ")]
    assert removed, "nothing changed"
    for line in removed:
        key = line[2:].strip().split(":")[0]
        assert key in owned, line
    # a top-of-file comment block and anchors stay byte for byte
    assert new.splitlines()[:10] == text.splitlines()[:10]
    if "&train_dataset" in text:
        assert "train_dataset: &train_dataset" in new and "dataset_config: *train_dataset" in new


def test_migration_is_idempotent_and_prints_nothing_twice():
    once = migrate_text(FINETUNE.read_text(), "llama3_1_8b").text
    twice = migrate_text(once, "llama3_1_8b").text
    assert twice == once


def test_3_1_to_3_0_drops_rope_scaling():
    v31 = migrate_text(PREDICT.read_text(), "llama3_1_8b").text
    v30 = yaml.safe_load(migrate_text(v31, "llama3_8b").text)
    assert "rope_scaling" not in v30["model"]["model_config"]
    assert v30["model"]["model_config"]["max_position_embedding"] == 8192


def test_cli_writes_output_and_prints_the_diff(tmp_path, capsys):
    out = tmp_path / "finetune_llama3_8b.yaml"
    assert migrate_main(["--config", str(FINETUNE), "--to", "llama3_8b", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"--- {FINETUNE}\n+++ {out}\n")
    assert "-    vocab_size: 32000" in printed and "+    vocab_size: 128256" in printed
    assert "+    n_kv_heads: 8\n" in printed
    expected = "".join(difflib.unified_diff(FINETUNE.read_text().splitlines(True), out.read_text().splitlines(True),
                                            fromfile=str(FINETUNE), tofile=str(out)))  # fmt: skip
    assert printed == expected
    assert yaml.safe_load(out.read_text()) == expected_dict(yaml.safe_load(FINETUNE.read_text()), "llama3_8b")
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary files left behind
    plain = tmp_path / "plain"
    plain.write_text("")
    assert out.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0600
    plain.unlink()


def test_cli_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.yaml"
    assert migrate_main(["--config", str(PREDICT), "--to", "llama3_1_70b", "--output", str(out), "--dry-run"]) == 0
    assert "+    num_layers: 80" in capsys.readouterr().out
    assert not out.exists()


def _one_line_error(capsys, argv, match):
    out = None
    try:
        rc = migrate_main(argv)
    except SystemExit as exc:  # argparse-level errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert re.search(match, err), err
    return out


def test_bad_inputs_give_one_line_errors_and_no_output(tmp_path, capsys):
    out = tmp_path / "out.yaml"
    _one_line_error(
        capsys,
        ["--config", str(tmp_path / "nope.yaml"), "--to", "llama3_8b", "--output", str(out)],
        r"config file '.*nope\.yaml' does not exist",
    )
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    _one_line_error(
        capsys,
        ["--config", str(lst), "--to", "llama3_8b", "--output", str(out)],
        r"'.*list\.yaml': expected a YAML mapping at the top level, got list",
    )
    _one_line_error(
        capsys,
        ["--config", str(FINETUNE), "--to", "llama3_9b", "--output", str(out)],
        r"unknown preset 'llama3_9b' \(did you mean 'llama3_8b'\?\); expected one of: llama3_8b, ",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    _one_line_error(
        capsys, ["--config", str(bad), "--to", "llama3_8b", "--output", str(out)], r"is not valid YAML \(line"
    )
    nomodel = tmp_path / "nomodel.yaml"
    nomodel.write_text("seed: 0\n")
    _one_line_error(
        capsys,
        ["--config", str(nomodel), "--to", "llama3_8b", "--output", str(out)],
        r"key 'model.model_config' \(a mapping\) is missing",
    )
    _one_line_error(capsys, ["--config", str(FINETUNE), "--output", str(out)], r"--config needs --to PRESET")
    _one_line_error(
        capsys,
        ["--config", str(FINETUNE), "--to", "llama3_8b", "--output", str(tmp_path / "no" / "x.yaml")],
        r"output folder '.*no' does not exist",
    )
    assert list(tmp_path.glob("out.yaml*")) == [] and not (tmp_path / "no").exists()


def test_yaml_the_editor_cannot_change_safely_is_refused(tmp_path):
    flow = "model: {model_config: {type: LlamaConfig, seq_length: 4096}, arch: {type: LlamaForCausalLM}}\n"
    with pytest.raises(MigrationError, match="not in a block mapping this editor can change"):
        migrate_text(flow, "llama3_8b", name="flow.yaml")


# ---------------------------------------------------------------------------------------------------- the editor
TRICKY = """\
# header
top: &anchor
  "quoted key": 1   # a comment with: colon
  'single': 'it''s'
  block: |
    line one: not a key
    line two
  url: "http://x#not-a-comment"   # real comment
  items:
  - a: 1
    b: 2
  - c
  flow: {x: 1, y: [1, 2]}
alias: *anchor
last: 3
"""


def test_editor_round_trips_tricky_yaml():
    doc = YamlDocument(TRICKY)
    doc.set(("top", "quoted key"), 5)
    doc.set(("top", "single"), "new")
    doc.set(("top", "url"), "https://y")
    doc.set(("top", "flow"), {"x": 2})
    doc.set(("top", "added"), [1, 2], after=("block",))
    doc.set(("last",), 1.0e-5)
    doc.delete(("top", "items"))
    doc.check()
    data = yaml.safe_load(doc.text)
    assert data["top"]["quoted key"] == 5 and data["top"]["single"] == "new"
    assert data["top"]["block"] == "line one: not a key\nline two\n"
    assert data["top"]["url"] == "https://y" and data["top"]["flow"] == {"x": 2} and data["top"]["added"] == [1, 2]
    assert "items" not in data["top"] and data["alias"] == data["top"] and data["last"] == 1e-5
    assert "# a comment with: colon" in doc.text and "# real comment" in doc.text and doc.text.startswith("# header\n")
    assert "'single': 'new'" in doc.text  # quote style kept


def test_editor_refuses_keys_inside_lists():
    doc = YamlDocument(TRICKY)
    with pytest.raises(YamlEditError):
        doc.set(("top", "items", 0, "a"), 3)


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, time; t=time.time()\n"
        "from mf_ext.migrate.cli import migrate_main\n"
        "try:\n    migrate_main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('mindspore', 'mindformers', 'torch') if m in sys.modules]\n"
        "print(heavy, time.time() - t, file=sys.stderr)\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--to PRESET" in r.stdout and "examples:" in r.stdout


# A YAML in the style of MindFormers' own Llama 2 configs: keys our configs do not use (paged attention, pipeline
# offset, rope extension) and a built-in checkpoint name that would download Llama 2 weights.
MINDFORMERS_STYLE = """\
model:
  model_config:
    type: LlamaConfig
    batch_size: 1 # add for increase predict
    seq_length: 4096
    hidden_size: 4096
    num_layers: 32
    num_heads: 32
    vocab_size: 32000
    multiple_of: 256
    rms_norm_eps: 1.0e-5
    bos_token_id: 1
    eos_token_id: 2
    pad_token_id: 0
    scaling_factor: 1.0 # rope extension (MindFormers)
    extend_method: "None" # support "None", "PI", "NTK"
    block_size: 16
    num_blocks: 1024
    offset: 0
    checkpoint_name_or_path: "llama2_7b"
  arch:
    type: LlamaForCausalLM
trainer:
  type: CausalLanguageModelingTrainer
  model_name: 'llama2_7b'
"""


def test_mindformers_style_yaml(tmp_path):
    new = migrate_text(MINDFORMERS_STYLE, "llama3_1_8b")
    data = yaml.safe_load(new.text)
    mc = data["model"]["model_config"]
    assert mc["checkpoint_name_or_path"] == ""  # never fetch Llama 2 weights into the Llama 3 network
    for key, value in {"scaling_factor": 1.0, "extend_method": "None", "block_size": 16, "num_blocks": 1024,
                       "offset": 0, "multiple_of": 256, "batch_size": 1}.items():  # fmt: skip
        assert mc[key] == value, key
    assert '# support "None", "PI", "NTK"' in new.text
    assert data["trainer"]["model_name"] == "llama3_1_8b"
    assert "processor" not in data and any("no processor.tokenizer" in n for n in new.notes)
    # new keys go next to their relatives, in the file's indentation
    lines = new.text.splitlines()
    assert lines[lines.index("    num_heads: 32") + 1] == "    n_kv_heads: 8"
    assert lines[lines.index("    type: Llama3Config") + 1] == "    auto_register: llama3_1_config.Llama3Config"


def test_windows_line_endings_and_document_marker_are_kept():
    text = "---\r\n" + PREDICT.read_text().replace("\n", "\r\n")
    new = migrate_text(text, "llama3_1_8b").text
    assert new.startswith("---\r\n")
    assert "\n" not in new.replace("\r\n", "")  # every line still ends in CRLF, new ones included
    assert yaml.safe_load(new) == expected_dict(yaml.safe_load(PREDICT.read_text()), "llama3_1_8b")
    with pytest.raises(MigrationError, match="not valid YAML .*single document"):
        migrate_text(PREDICT.read_text() + "---\nother: 1\n", "llama3_8b")


# ------------------------------------------------------------------------------------- editor, property-based
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SCALARS = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


def _block_paths(data, prefix=()):
    """Key paths of every mapping entry reachable through mappings only (what the editor may change)."""
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append((*prefix, k))
            out.extend(_block_paths(v, (*prefix, k)))
    return out


@settings(
    max_examples=int(os.environ.get("MF_EXT_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    phases=[Phase.explicit, Phase.generate],
)  # no shrinking: a failure prints its draws, and CI time stays bounded
@given(data=st.data())
def test_editor_edits_mean_exactly_what_was_asked(data):
    text = FINETUNE.read_text()
    expected = yaml.safe_load(text)
    doc = YamlDocument(text)
    for _ in range(data.draw(st.integers(1, 6))):
        paths = [p for p in _block_paths(expected) if not isinstance(_get(expected, p[:-1]), list)]
        # never edit inside the anchored dataset mapping: its alias shares it (covered by the TRICKY test)
        paths = [p for p in paths if p[0] != "train_dataset" and p[0] != "train_dataset_task"]
        action = data.draw(st.sampled_from(["set", "insert", "delete", "dict"]))
        path = data.draw(st.sampled_from(paths))
        parent = _get(expected, path[:-1])
        if action == "set":
            value = data.draw(_SCALARS)
            doc.set(path, value)
            parent[path[-1]] = value
        elif action == "dict":
            value = data.draw(st.dictionaries(_KEYS, _SCALARS, min_size=1, max_size=3))
            doc.set(path, value)
            parent[path[-1]] = value
        elif action == "insert" and isinstance(_get(expected, path), dict):
            key = data.draw(_KEYS)
            value = data.draw(_SCALARS)
            doc.set((*path, key), value)
            _get(expected, path)[key] = value
        elif action == "delete" and len(path) > 1:
            doc.delete(path)
            del parent[path[-1]]
        doc.check()
    assert yaml.safe_load(doc.text) == expected
    # comments outside the edited lines are still there
    assert doc.text.startswith(text.split("\nseed:")[0])


def _family_with_presets(folder: Path, name: str, preset_names: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    (folder / "family.py").write_text(
        "from mf_ext.family import Family, Reference\n"
        f"FAMILY = Family(name={name!r}, classes={{'config': 'cfg.NewConfig', 'model': 'mdl.NewForCausalLM'}},\n"
        "    presets='presets:PRESETS',\n"
        "    reference=Reference(model='transformers:LlamaForCausalLM', config='transformers:LlamaConfig', tiny={}))\n"
    )
    (folder / "presets.py").write_text(
        "from mf_ext.migrate.presets import DELETE, Preset\n"
        "PRESETS = {n: Preset(n, 'test preset', model_config={'vocab_size': 7, 'multiple_of': DELETE},\n"
        "    tokenizer={'unk_token': DELETE, 'eos_token': '<eos>'}, clear_checkpoint_names=frozenset({'llama2_7b'}),\n"
        "    model_name_prefixes=('llama2',), notes={'load_checkpoint': 'old weights {value!r}'})\n"
        f"    for n in {preset_names!r}}}\n"
    )
    return folder


def test_presets_are_the_familys_data_applied_by_a_generic_engine(tmp_path):
    """A family folder declares its presets; the migration applies their generic operations and points the YAML at
    that family's classes (a family without a tokenizer class leaves the tokenizer's class alone)."""
    fam = _family_with_presets(tmp_path / "newfam", "newfam", ("to_new",))
    doc = YamlDocument(MINDFORMERS_STYLE)
    doc.set(("load_checkpoint",), "/old.ckpt")
    result = migrate_text(doc.text, "to_new", register_path=fam)
    mc = result.data["model"]["model_config"]
    assert mc["vocab_size"] == 7 and "multiple_of" not in mc and mc["checkpoint_name_or_path"] == ""
    assert (mc["type"], mc["auto_register"]) == ("NewConfig", "cfg.NewConfig")
    assert result.data["model"]["arch"] == {"type": "NewForCausalLM", "auto_register": "mdl.NewForCausalLM"}
    assert result.data["trainer"]["model_name"] == "to_new"
    assert result.notes == ["old weights '/old.ckpt'"]
    with pytest.raises(MigrationError, match="unknown preset 'llama3_8b'"):
        migrate_text(MINDFORMERS_STYLE, "llama3_8b", register_path=fam)  # only that family's presets


def test_a_preset_name_declared_by_two_families_is_an_error(tmp_path, monkeypatch):
    from mf_ext import registry

    a = _family_with_presets(tmp_path / "a", "fam_a", ("same",))
    b = _family_with_presets(tmp_path / "b", "fam_b", ("same",))
    monkeypatch.setattr(registry, "all_families", lambda *a_, **k: [registry.load_plugin(a), registry.load_plugin(b)])
    with pytest.raises(MigrationError, match="preset 'same' is declared by families 'fam_a' and 'fam_b'"):
        migrate_text(MINDFORMERS_STYLE, "same")
