"""The test suite exercises this checkout: ``tests`` is a package and ``mf_ext`` is imported from here, not from an
editable install elsewhere (pyproject's pytest ``pythonpath``)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mf_ext_and_tests_come_from_this_checkout():
    import mf_ext
    import tests.hf_fixtures

    assert Path(mf_ext.__file__).resolve().parent == REPO / "mf_ext"
    assert Path(tests.hf_fixtures.__file__).resolve().parent == REPO / "tests"


def test_no_test_module_edits_sys_path():
    offenders = [
        str(p.relative_to(REPO))
        for p in sorted((REPO / "tests").rglob("*.py"))
        if "sys.path.insert" in p.read_text() or "sys.path.append" in p.read_text()
    ]
    offenders.remove("tests/test_package.py")  # this file names them
    assert not offenders, offenders
    assert str(REPO / "tests") not in sys.path
