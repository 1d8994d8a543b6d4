"""Every built-in family converts both ways, bit-exactly, on checkpoints laid out by its independent reference.

The HF side of each checkpoint comes from the family's ``reference`` -- ``save_pretrained`` of the reference model
with each tiny configuration, or ``reference.to_format`` for remote-code layouts -- never from our own spec's names,
so a spec that expects names or shapes the real format does not have fails here (values are checked by the parity
test, tests/test_family_parity.py). A new family is covered the day its folder is added.
"""

from __future__ import annotations

import itertools

import pytest

from mf_ext.registry import builtin_plugins
from tests.convert.convert_helpers import read_st_dir
from tests.family_parity import case_id, reference_cases, reference_checkpoint, reference_model

PLUGINS = builtin_plugins()
CASES = reference_cases(PLUGINS)


def test_every_plugin_has_both_directions_and_distinct_names():
    assert {p.root.name for p in PLUGINS} >= {"llama3_1", "qwen2"}
    seen: dict[str, str] = {}
    for p in PLUGINS:
        assert callable(p.convert_pt_to_ms) and callable(p.convert_ms_to_pt), p.root
        assert p.model_names, p.root
        for n in p.model_names:
            assert n not in seen, f"{n!r} claimed by {seen.get(n)} and {p.root.name}"
            seen[n] = p.root.name


def _option_sets(options: tuple[str, ...]) -> list[dict[str, bool]]:
    return [dict(zip(options, values, strict=True)) for values in itertools.product((False, True), repeat=len(options))]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_round_trip_of_the_reference_layout(tmp_path, case):
    plugin, tiny = case
    fam = plugin.family
    src = reference_checkpoint(fam, reference_model(fam, tiny), tmp_path / "hf")
    original = read_st_dir(src)
    assert original, f"{fam.name}/{tiny}: the reference wrote no safetensors"
    declared = tuple(fam.spec().options) if fam.specs else fam.options  # the options the family's spec declares
    for i, options in enumerate(_option_sets(declared)):
        ckpt, back = tmp_path / f"w{i}.ckpt", tmp_path / f"back{i}"
        plugin.convert_pt_to_ms(src, ckpt, progress=False, **options)
        plugin.convert_ms_to_pt(ckpt, back, progress=False)
        assert read_st_dir(back) == original, (fam.name, tiny, options)
