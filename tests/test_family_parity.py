"""Every built-in family has an independent reference, and its model matches it.

The coverage test walks ``registry.builtin_plugins()``: a family folder without a declared reference (or whose
reference classes cannot be imported) fails it, so no family lands untested. The parity test is generated from the
same walk: for each family and each of its ``reference.tiny`` configurations, a random reference model goes through
the family's converter into the family's model (PyNative: logits <= reference.atol over prompt + 32 tokens, 32
greedy tokens without the KV cache (teacher-forced) and with it); one configuration per family also runs in graph
mode.
"""

from __future__ import annotations

import pytest

from mf_ext.registry import builtin_plugins
from tests.family_parity import case_id, check_parity, import_object, reference_cases

PLUGINS = builtin_plugins()
# Families that convert but have no MindSpore model class yet (nothing to run parity on). The coverage test fails
# when one of them gains a model class, so this list cannot go stale.
CONVERSION_ONLY: set[str] = set()
RUNNABLE = [p for p in PLUGINS if p.family.class_ref("model") is not None]
CASES = reference_cases(RUNNABLE)


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.family.name)
def test_every_builtin_family_declares_an_independent_reference(plugin):
    fam = plugin.family
    assert not fam.legacy, f"{plugin.root}: no family.py (declare FAMILY = Family(..., reference=Reference(...)))"
    ref = fam.reference
    assert ref is not None and ref.tiny, f"family {fam.name!r} declares no reference with tiny configurations"
    model_cls, config_cls = import_object(ref.model), import_object(ref.config)
    assert isinstance(model_cls, type) and isinstance(config_cls, type), (ref.model, ref.config)
    assert not ref.model.startswith(("mf_ext", "mindformers")), "the reference must be independent of our code"
    if ref.to_format is not None:
        assert callable(fam.reference_to_format())
    if ref.prepare is not None:
        assert callable(fam.reference_prepare())
    has_model = fam.class_ref("model") is not None
    assert has_model != (fam.name in CONVERSION_ONLY), (
        f"family {fam.name!r}: {'remove it from' if has_model else 'a family without a model class must be in'} "
        "CONVERSION_ONLY"
    )
    if has_model:
        assert fam.yaml("predict") is not None and fam.yaml("predict").is_file(), fam.name


def test_coverage_walks_every_family_folder():
    from mf_ext.registry import BUILTIN_RESEARCH

    folders = sorted(d.name for d in BUILTIN_RESEARCH.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))
    assert sorted(p.root.name for p in PLUGINS) == folders
    assert CASES, "no runnable family"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_family_parity_pynative(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MindFormers writes ./output/log
    plugin, tiny = case
    check_parity(plugin, tiny, tmp_path)


@pytest.mark.parametrize("plugin", RUNNABLE, ids=lambda p: p.family.name)
def test_family_parity_graph_mode(plugin, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_parity(plugin, next(iter(plugin.family.reference.tiny)), tmp_path, graph=True)
