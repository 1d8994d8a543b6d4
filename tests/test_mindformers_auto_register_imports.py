"""Every class a built-in family declares can be loaded by MindFormers' own ``auto_register`` (``run_mindformer.py
--register_path``), which copies a module together with the relative imports *it finds*: its regex sees ``from .x
import y`` and ``import .x`` only, so a sibling reached by ``from . import x`` alone is left behind and the copy fails
to import (``cannot import name 'x'``). Checked with MindFormers' own ``get_relative_import_files`` against the
relative imports Python actually performs (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mf_ext.registry import builtin_plugins

PLUGINS = [p for p in builtin_plugins() if p.family.classes]


def _actual_relative_imports(path: Path, seen: set[Path]) -> set[Path]:
    """Sibling files ``path`` imports relatively, recursively (what Python needs beside it)."""
    if path in seen:
        return set()
    seen.add(path)
    out: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                sibling = path.parent / f"{name.split('.')[0]}.py"
                if sibling.is_file():
                    out.add(sibling)
                    out |= _actual_relative_imports(sibling, seen)
    return out


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.family.name)
def test_mindformers_copies_every_relative_import_of_each_declared_class(plugin):
    from mindformers.tools.hub.dynamic_module_utils import get_relative_import_files

    for role, ref in plugin.family.classes.items():
        module_file = plugin.root / f"{ref.rsplit('.', 1)[0]}.py"
        assert module_file.is_file(), (plugin.family.name, role, ref)
        copied = {Path(f).resolve() for f in get_relative_import_files(str(module_file))}
        needed = {p.resolve() for p in _actual_relative_imports(module_file, set())}
        missing = sorted(p.name for p in needed - copied)
        assert not missing, (
            f"{plugin.family.name}: {module_file.name} ({role}) reaches {missing} only as 'from . import x'; "
            "write 'from .x import ...' so MindFormers' auto_register copies it"
        )
