"""Imports written for run_mindformer.py resolve as it resolves them, to the plug-in's own modules: sibling files
(``from internlm2_config import X``), ``research.<name>`` from the folder's MindFormers root, never our checkout's
research/ or another plug-in's file of the same name; factory ``model.arch`` classes are accepted."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from mf_ext.registry import RegistryError, load_plugin, plugin_imports, resolve_auto_register
from tests.foreign.foreign_helpers import REPO, write


def _purge(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def test_sibling_and_research_imports_are_the_plugins_own_modules(tmp_path):
    folder = write(
        tmp_path / "root" / "research" / "alpha",
        {
            "alpha_a.py": """
                import alpha_b
                from alpha_b import VALUE
                import research.alpha.alpha_b as via_root
                from research.alpha import alpha_b as via_from
                from infer.layer import LAYER  # a sub-folder without __init__.py (llama3_1's infer/)
                import research.alpha.infer.layer as layer_via_root

                SAME = alpha_b is via_root is via_from
            """,
            "alpha_b.py": "VALUE = 'alpha'\n",
            "infer/layer.py": "LAYER = object()\n",
        },
    )
    plugin = load_plugin(folder)
    mod = plugin.import_module("alpha_a")
    pkg = plugin.package
    assert mod.SAME and mod.VALUE == "alpha"
    assert mod.alpha_b is sys.modules[f"{pkg}.alpha_b"]  # one module object, whatever name imported it
    assert mod.layer_via_root is sys.modules[f"{pkg}.infer.layer"] and mod.LAYER is mod.layer_via_root.LAYER
    assert mod.alpha_b.__spec__.name == f"{pkg}.alpha_b"  # the module keeps its own identity
    # the aliases are gone once the import is over: nothing else in the process sees a plug-in's file names
    assert not {"alpha_b", "infer", "infer.layer", "research.alpha", "research.alpha.alpha_b"} & set(sys.modules)


def test_our_research_folder_never_answers_for_theirs(tmp_path, monkeypatch):
    # the launcher's folder (our checkout, holding research/llama3_1 too) is sys.path[0]
    monkeypatch.syspath_prepend(str(REPO))
    _purge("research")
    importlib.import_module("research")  # our checkout's research/ is already imported as a namespace package
    assert (REPO / "research" / "llama3_1" / "weight_map.py").is_file()
    folder = write(
        tmp_path / "mf" / "research" / "llama3_1",
        {
            "weight_map.py": "WHOSE = 'theirs'\n",
            "llama3_1_user.py": "from research.llama3_1.weight_map import WHOSE\n",
        },
    )
    try:
        assert load_plugin(folder).import_module("llama3_1_user").WHOSE == "theirs"
    finally:
        _purge("research")


def test_research_resolves_where_no_research_package_is_importable(tmp_path, monkeypatch):
    # mf-ext installed, the launcher run from elsewhere: no `research` on sys.path at all
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p or ".").resolve() / "research").is_dir()])
    monkeypatch.chdir(tmp_path)
    _purge("research")
    folder = write(
        tmp_path / "mf" / "research" / "beta",
        {"beta_util.py": "X = 1\n", "beta_user.py": "from research.beta.beta_util import X\nimport research\n"},
    )
    try:
        mod = load_plugin(folder).import_module("beta_user")
        assert mod.X == 1 and list(mod.research.__path__) == [str(folder.parent)]
        assert "research" not in sys.modules  # a namespace made for the import, dropped after it
    finally:
        _purge("research")


def test_research_root_from_the_working_directory(tmp_path, monkeypatch):
    # a register path outside ROOT/research/: run_mindformer.py runs from the MindFormers root, so the cwd is it
    write(tmp_path / "mf" / "research" / "common", {"shared.py": "WHERE = 'cwd root'\n"})
    folder = write(tmp_path / "elsewhere" / "plug", {"user.py": "from research.common.shared import WHERE\n"})
    monkeypatch.chdir(tmp_path / "mf")
    assert load_plugin(folder).import_module("user").WHERE == "cwd root"
    monkeypatch.chdir(tmp_path)
    other = write(tmp_path / "elsewhere" / "plug2", {"user.py": "from research.common.shared import WHERE\n"})
    with pytest.raises(RegistryError) as err:
        from mf_ext.registry import resolve_class

        resolve_class("user.X", [load_plugin(other)], key="model.arch.auto_register")
    assert "research.common" in str(err.value) and "MindFormers root" in str(err.value)
    assert "\n" not in str(err.value)


def test_two_plugins_with_the_same_sibling_names_do_not_collide(tmp_path):
    mods = []
    for n in (1, 2):
        folder = write(
            tmp_path / f"p{n}",
            {
                "helpers.py": f"VALUE = {n}\n",
                "convert_weight.py": f"WHO = {n}\n",
                "main.py": """
                    import helpers
                    import convert_weight

                    VALUE = (helpers.VALUE, convert_weight.WHO)


                    def later():
                        import helpers  # imported when called, long after the plug-in was loaded

                        return helpers.VALUE
                """,
            },
        )
        mods.append(load_plugin(folder).import_module("main"))
    assert [m.VALUE for m in mods] == [(1, 1), (2, 2)]
    for _ in range(2):
        for n, mod in enumerate(mods, 1):
            with plugin_imports():
                assert mod.later() == n


def test_a_module_on_sys_path_wins_over_a_sibling(tmp_path):
    # run_mindformer.py *appends* the register path: an installed module of the same name is what it imports
    folder = write(tmp_path / "plug", {"yaml.py": "FAKE = True\n", "user.py": "import yaml\n"})
    mod = load_plugin(folder).import_module("user")
    assert hasattr(mod.yaml, "safe_load") and not hasattr(mod.yaml, "FAKE")


FACTORY = """
    from mindformers import LlamaForCausalLM
    from mindformers.models.tokenization_utils import PreTrainedTokenizer


    class Factory:
        def __new__(cls, config, *args, **kwargs):
            return LlamaForCausalLM(config)


    class Plain:
        pass


    class Tok(PreTrainedTokenizer):
        pass
"""


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("factory_model.Factory", None),
        ("factory_model.Plain", r"model\.arch.*expects a MindSpore nn\.Cell"),
        ("factory_model.Tok", r"model\.arch.*is a PreTrainedTokenizer subclass.*expects a MindSpore nn\.Cell"),
    ],
)
def test_factory_arch_is_accepted_clear_mistakes_are_not(tmp_path, ref, error):
    folder = write(tmp_path / "fact", {"factory_model.py": FACTORY})
    cfg = {"model": {"arch": {"auto_register": ref}, "model_config": {"type": "LlamaConfig"}}}
    if error is None:
        out, found = resolve_auto_register(cfg, str(folder), register=False)
        assert out["model"]["arch"]["type"] == "Factory" and found[0].cls.__name__ == "Factory"
    else:
        with pytest.raises(RegistryError, match=error):
            resolve_auto_register(cfg, str(folder), register=False)
