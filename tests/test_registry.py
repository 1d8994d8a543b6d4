"""Registry: plug-in import, auto_register resolution into MindFormers' register, and every refusal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mf_ext.config import ConfigError, load_config, load_config_ex
from mf_ext.registry import RegistryError, available_models, load_plugin, parse_register_paths, plugin_for_model

CFG_PY = """
from mindformers.models.configuration_utils import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny_cfg_{tag}"

    def __init__(self, hidden_size=4, vocab_size=8, **kwargs):
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        super().__init__(**kwargs)
"""

MODEL_PY = """
import mindspore as ms
from mindspore import nn

from .tiny_config import TinyConfig  # relative import between files of one plug-in


class TinyModel(nn.Cell):
    def __init__(self, config: TinyConfig):
        super().__init__()
        assert isinstance(config, TinyConfig), type(config)
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.hidden_size)

    def construct(self, x):
        return self.embedding(x)
"""

TOKENIZER_PY = """
from mindformers.models.tokenization_utils import PreTrainedTokenizer


class CharTokenizer(PreTrainedTokenizer):
    vocab_files_names = {{}}
    model_input_names = ["input_ids"]

    def __init__(self, alphabet="abcdefgh", **kwargs):
        self.alphabet = alphabet
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.alphabet)

    def get_vocab(self):
        return {{c: i for i, c in enumerate(self.alphabet)}}

    def _tokenize(self, text, **kwargs):
        return list(text)

    def _convert_token_to_id(self, token):
        return self.alphabet.index(token)

    def _convert_id_to_token(self, index):
        return self.alphabet[index]

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)
"""


def make_plugin(root: Path, tag: str) -> Path:
    root.mkdir(parents=True)
    (root / "tiny_config.py").write_text(CFG_PY.format(tag=tag))
    (root / "tiny_model.py").write_text(MODEL_PY)
    (root / "tiny_tokenizer.py").write_text(TOKENIZER_PY.format())
    (root / "convert_weight.py").write_text(
        f'MODEL_NAMES = ("{tag}", "{tag}_alias")\n\ndef convert_pt_to_ms(input_path, output_path, dtype=None, **kw):\n'
        f'    return "{tag}"\n'
    )
    (root / "convert_reversed.py").write_text(
        f'def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):\n    return "{tag}-reversed"\n'
    )
    return root


def tiny_yaml(**changes) -> dict:
    cfg = {
        "run_mode": "predict",
        "model": {
            "model_config": {"type": "TinyConfig", "auto_register": "tiny_config.TinyConfig", "hidden_size": 6},
            "arch": {"type": "TinyModel", "auto_register": "tiny_model.TinyModel"},
        },
        "processor": {"tokenizer": {"type": "CharTokenizer", "auto_register": "tiny_tokenizer:CharTokenizer"}},
        "context": {"device_target": "CPU", "mode": 1},
    }
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    return make_plugin(tmp_path / "plug_a", "alpha")


def test_two_plugins_with_the_same_file_names_do_not_collide(tmp_path):
    a = load_plugin(make_plugin(tmp_path / "one" / "tiny", "one"))
    b = load_plugin(make_plugin(tmp_path / "two" / "tiny", "two"))  # same folder name, same file names
    assert a.convert_pt_to_ms("i", "o") == "one"
    assert b.convert_pt_to_ms("i", "o") == "two"
    assert b.convert_ms_to_pt("i", "o") == "two-reversed"
    assert a.import_module("tiny_config") is not b.import_module("tiny_config")
    assert a.import_module("tiny_config").TinyConfig.model_type == "tiny_cfg_one"
    assert load_plugin(tmp_path / "one" / "tiny") is a  # one object per folder
    # nothing added to sys.path
    assert str(tmp_path / "one" / "tiny") not in sys.path


def test_model_names_are_read_without_import(tmp_path):
    make_plugin(tmp_path / "research" / "p1", "fam1")
    p2 = make_plugin(tmp_path / "research" / "p2", "fam2")
    (p2 / "convert_weight.py").write_text('MODEL_NAMES = ("fam2",)\nraise RuntimeError("imported!")\n')
    table = available_models(tmp_path / "research")
    assert sorted(table) == ["fam1", "fam1_alias", "fam2"]
    assert plugin_for_model("FAM2", tmp_path / "research").root == p2.resolve()
    with pytest.raises(
        RegistryError,
        match=r"unknown model 'fam3'.*did you mean 'fam\d' or 'fam\d'.*known models: fam1, fam1_alias, fam2",
    ):
        plugin_for_model("fam3", tmp_path / "research")


def test_builtin_plugins_each_have_both_directions():
    """Every shipped model name reaches a plug-in that converts both ways (LitGPT's one-direction bug)."""
    table = available_models()
    for name, plugin in table.items():
        assert (plugin.root / "convert_weight.py").is_file(), name
        assert (plugin.root / "convert_reversed.py").is_file(), name


def test_register_path_forms(tmp_path, monkeypatch):
    a = make_plugin(tmp_path / "a", "ra")
    b = make_plugin(tmp_path / "b", "rb")
    assert parse_register_paths(f"{a},{b}") == [a.resolve(), b.resolve()]
    assert parse_register_paths([str(a), str(b), str(a)]) == [a.resolve(), b.resolve()]
    monkeypatch.setenv("REGISTER_PATH", str(b))
    assert parse_register_paths(None) == [b.resolve()]
    with pytest.raises(RegistryError, match=r"--register_path: folder '.*nope' does not exist"):
        parse_register_paths(str(tmp_path / "nope"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RegistryError, match=r"is not a folder"):
        parse_register_paths(str(tmp_path / "file.txt"))


def test_yaml_builds_through_mindformers_builders_and_ours(tmp_path, plugin_dir):
    from mindformers.models import build_model, build_model_config, build_tokenizer

    original = tiny_yaml()
    path = write_yaml(tmp_path / "tiny.yaml", original)
    before = path.read_text()
    cfg, entries = load_config_ex(path, str(plugin_dir))
    assert {e.module_type for e in entries} == {"config", "models", "tokenizer"}
    assert [e.key for e in entries] == [
        "model.model_config.auto_register",
        "model.arch.auto_register",
        "processor.tokenizer.auto_register",
    ]
    assert "auto_register" not in cfg.model.arch and cfg.model.arch.type == "TinyModel"
    assert path.read_text() == before  # the file is never touched

    # MindFormers' own builders find the registered classes
    mc = build_model_config(cfg.model.model_config)
    assert type(mc).__name__ == "TinyConfig" and mc.hidden_size == 6
    tok = build_tokenizer(cfg.processor.tokenizer)
    assert tok("cab")["input_ids"] == [2, 0, 1]
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    model = build_model(cfg.model)
    assert type(model).__name__ == "TinyModel" and model.config.hidden_size == 6
    # building did not mutate the loaded config
    assert cfg.model.arch.type == "TinyModel" and cfg.model.model_config.hidden_size == 6

    # ... and ours
    import mf_ext

    ours = mf_ext.load_model(path, register_path=str(plugin_dir), hidden_size=5)
    assert ours.config.hidden_size == 5
    assert mf_ext.load_tokenizer(path, register_path=str(plugin_dir), alphabet="xyz")("zy")["input_ids"] == [2, 1]


def test_load_config_is_repeatable_and_does_not_mutate_input(plugin_dir):
    raw = tiny_yaml()
    snapshot = yaml.safe_dump(raw)
    c1 = load_config(raw, str(plugin_dir))
    c2 = load_config(raw, str(plugin_dir))
    assert yaml.safe_dump(raw) == snapshot
    assert c1 == c2


def test_env_register_path_is_used(tmp_path, plugin_dir, monkeypatch):
    monkeypatch.setenv("REGISTER_PATH", str(plugin_dir))
    cfg = load_config(tiny_yaml())
    assert cfg.model.arch.type == "TinyModel"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model.arch.auto_register": "../tiny_model.TinyModel"},
            r"model\.arch\.auto_register: '\.\./tiny_model\.TinyModel' escapes the register path",
        ),
        (
            {"model.arch.auto_register": "/etc/tiny_model.TinyModel"},
            r"model\.arch\.auto_register: '/etc/tiny_model\.TinyModel' escapes the register path",
        ),
        (
            {"model.arch.auto_register": "tiny_modle.TinyModel"},
            r"model\.arch\.auto_register: 'tiny_modle\.TinyModel': no file 'tiny_modle\.py' in register path .*did you mean 'tiny_model'",
        ),
        (
            {"model.arch.auto_register": "tiny_model.TinyModle"},
            r"model\.arch\.auto_register: '.*tiny_model\.py' has no class 'TinyModle' \(did you mean 'TinyModel'\?\)",
        ),
        (
            {"model.arch.auto_register": "tiny_tokenizer.CharTokenizer", "model.arch.type": "CharTokenizer"},
            r"model\.arch\.auto_register: 'tiny_tokenizer\.CharTokenizer' is a PreTrainedTokenizer subclass, but 'model\.arch' expects a MindSpore nn\.Cell",
        ),
        (
            {"processor.tokenizer.auto_register": "tiny_config.TinyConfig", "processor.tokenizer.type": "TinyConfig"},
            r"processor\.tokenizer\.auto_register: .* expects a MindFormers tokenizer",
        ),
        ({"model.arch.auto_register": "tiny_model"}, r"model\.arch\.auto_register: expected 'module\.Class'"),
        ({"model.arch.auto_register": 42}, r"model\.arch\.auto_register: expected 'module\.Class'.*got 42"),
        (
            {"model.arch.type": "LlamaForCausalLM"},
            r"model\.arch\.type: 'LlamaForCausalLM' does not match the auto_register class 'TinyModel'",
        ),
        (
            {"model.arch.extra": {"auto_register": "tiny_model.TinyModel"}},
            r"model\.arch\.extra\.auto_register: cannot tell what kind of class belongs under 'model\.arch\.extra'",
        ),
    ],
)
def test_bad_auto_register_is_refused_with_its_key_path(tmp_path, plugin_dir, change, message):
    path = write_yaml(tmp_path / "bad.yaml", tiny_yaml(**change))
    with pytest.raises(RegistryError, match=message) as info:
        load_config(path, str(plugin_dir))
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))


def test_module_escaping_by_symlink_is_refused(tmp_path, plugin_dir):
    outside = tmp_path / "outside.py"
    outside.write_text("class Evil: pass\n")
    os.symlink(outside, plugin_dir / "evil.py")
    with pytest.raises(RegistryError, match=r"module 'evil' of .* resolves outside its folder"):
        load_config(tiny_yaml(**{"model.arch.auto_register": "evil.Evil", "model.arch.type": "Evil"}), str(plugin_dir))


def test_ambiguous_reference_across_register_paths(tmp_path):
    a = make_plugin(tmp_path / "a", "amb_a")
    b = make_plugin(tmp_path / "b", "amb_b")
    with pytest.raises(
        RegistryError, match=r"model\.model_config\.auto_register: 'tiny_config\.TinyConfig' is ambiguous"
    ):
        load_config(tiny_yaml(), f"{a},{b}")


def test_missing_register_path_and_plugin_import_error(tmp_path, plugin_dir):
    with pytest.raises(RegistryError, match=r"needs a plug-in folder; pass --register_path"):
        load_config(tiny_yaml(), register_path=None) if not os.environ.get("REGISTER_PATH") else None
    (plugin_dir / "broken.py").write_text("import not_a_module_xyz\nclass B: pass\n")
    with pytest.raises(
        RegistryError, match=r"model\.arch\.auto_register: importing '.*broken\.py' failed: ModuleNotFoundError"
    ):
        load_config(tiny_yaml(**{"model.arch.auto_register": "broken.B", "model.arch.type": "B"}), str(plugin_dir))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"config '.*missing\.yaml' does not exist"),
        ("a: [1, 2\n", r"config '.*\.yaml': invalid YAML at line \d+"),
        ("- just\n- a list\n", r"config '.*\.yaml': expected a YAML mapping at top level, got list"),
    ],
)
def test_bad_yaml_files(tmp_path, content, message):
    path = tmp_path / ("missing.yaml" if content is None else "bad.yaml")
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path, None)


def test_launcher_and_cli_help_import_nothing_heavy():
    code = textwrap.dedent(
        """
        import sys, contextlib, io
        from mf_ext.launcher import build_parser
        build_parser().format_help()
        import mf_ext.cli
        with contextlib.redirect_stdout(io.StringIO()):
            mf_ext.cli.main(["--help"])
        import mf_ext
        heavy = [m for m in ("mindspore", "mindformers", "torch", "transformers") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_launcher_bad_inputs_exit_nonzero_with_one_line(tmp_path, plugin_dir):
    repo = Path(__file__).resolve().parent.parent
    cases = [
        (["--config", str(tmp_path / "none.yaml")], "does not exist"),
        (
            ["--config", str(write_yaml(tmp_path / "t.yaml", tiny_yaml())), "--register_path", str(tmp_path / "nope")],
            "--register_path: folder",
        ),
    ]
    for argv, needle in cases:
        res = subprocess.run(
            [sys.executable, str(repo / "run_mindformer_ext.py"), *argv], capture_output=True, text=True, cwd=tmp_path
        )
        assert res.returncode != 0
        err_lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(err_lines) == 1 and needle in err_lines[0], res.stderr
