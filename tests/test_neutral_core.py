"""``mf_ext/`` names no model family in code: a new family is a new folder, never an edit of the core.

Every identifier and every string constant of ``mf_ext/**/*.py`` is scanned with ``ast``. Docstrings, comments and
messages (text inside ``raise``, arguments of ``print`` / ``warn`` / logging / ``append`` calls, ``help=`` /
``description=`` / ``epilog=`` / ``usage=`` keywords, module-level ``*EXAMPLES`` / ``USAGE`` texts) may name
families; anything else that does (a default ``"research/<family>"``, a class name, a regex of layer names, a
preset table) is code and fails this test, which lists each token with its file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "mf_ext"

# Family names found anywhere inside a token ...
SUBSTRINGS = (
    "llama", "qwen", "mistral", "mixtral", "glm", "internlm", "baichuan", "gpt2", "gptneox", "gpt_neox", "deepseek",
    "telechat", "gemma", "falcon", "starcoder", "bloom", "minicpm", "olmo", "phi3",
)  # fmt: skip
# ... and short ones only as a whole word of a token (``yi`` in ``yield_`` is no family).
WORDS = ("yi", "phi")

MESSAGE_CALLS = {
    "print", "warn", "warning", "info", "debug", "error", "exception", "critical", "log", "write", "exit", "fail",
    "append", "extend", "note",
}  # fmt: skip
MESSAGE_KEYWORDS = {"help", "description", "epilog", "usage", "msg", "message", "reason"}
MESSAGE_NAMES = re.compile(r"(^|_)(EXAMPLES|USAGE|HELP)$")


def _words(token: str) -> list[str]:
    """``Llama3ForCausalLM`` -> [llama, 3, for, causal, lm]; ``yi_6b`` -> [yi, 6, b]."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", token)
    return [w.lower() for w in re.split(r"[^A-Za-z]+|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", spaced) if w]


def names_a_family(text: str) -> str | None:
    low = text.lower()
    for s in SUBSTRINGS:
        if s in low:
            return s
    for token in re.findall(r"[A-Za-z0-9_]+", text):
        for w in _words(token):
            if w in WORDS:
                return w
    return None


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.add(id(first.value))
    return out


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _message_nodes(tree: ast.AST) -> set[int]:
    """ids of every node that lies inside a message context."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            roots.append(node)
        elif isinstance(node, ast.Call):
            if _call_name(node.func) in MESSAGE_CALLS:
                roots.extend(node.args)
            roots.extend(k.value for k in node.keywords if k.arg in MESSAGE_KEYWORDS)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and MESSAGE_NAMES.search(t.id) for t in targets):
                roots.append(node.value)
    return {id(n) for root in roots for n in ast.walk(root)}


def family_tokens(path: Path) -> list[str]:
    """``file:line: token`` for every identifier or code string of ``path`` that names a family."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstring_nodes(tree) | _message_nodes(tree)
    rel = path.relative_to(REPO)
    found = []

    def hit(node: ast.AST, text: str | None) -> None:
        if text and names_a_family(text):
            found.append(f"{rel}:{getattr(node, 'lineno', '?')}: {text[:80]!r}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            hit(node, node.id)
        elif isinstance(node, ast.Attribute):
            hit(node, node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            hit(node, node.name)
        elif isinstance(node, ast.arg):
            hit(node, node.arg)
        elif isinstance(node, ast.keyword):
            hit(node, node.arg)
        elif isinstance(node, ast.alias):
            hit(node, node.name)
            hit(node, node.asname)
        elif isinstance(node, ast.ImportFrom):
            hit(node, node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            hit(node, node.value)
    return found


def test_the_scanner_finds_what_it_must_and_only_that(tmp_path):
    code = '''
"""Docstring naming Llama is fine."""
import argparse
DEFAULT = "research/llama3_1"                      # code: found
class Llama3Config: pass                            # found
def f(qwen_path): return {"rope_type": "llama3"}   # two found
def g():
    """Llama again, fine."""
    raise ValueError("not a Llama model")           # message
def h(p: argparse.ArgumentParser):
    p.add_argument("--x", default="y", help="e.g. --model llama")   # help text
    print("Llama 3")                                # message
    yield_ = "yield"                                # not a family
    return yi_6b                                    # found (whole word 'yi')
EXAMPLES = "mf-ext convert --model llama"          # help text
'''
    f = tmp_path / "m.py"
    f.write_text(code)
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        found = family_tokens(f)
    finally:
        REPO = saved
    texts = [line.split(": ", 1)[1] for line in found]
    assert sorted(texts) == sorted(["'research/llama3_1'", "'Llama3Config'", "'qwen_path'", "'llama3'", "'yi_6b'"]), (
        found
    )


@pytest.mark.parametrize(
    "token", ["LlamaForCausalLM", "qwen2", "Qwen3Moe", "chatglm", "internlm2", "Yi", "deepseek_v3"]
)
def test_family_words(token):
    assert names_a_family(token)


@pytest.mark.parametrize("token", ["yield", "option", "optimizer", "graph", "phase", "yielding", "philosophy"])
def test_not_family_words(token):
    assert names_a_family(token) is None


def test_mf_ext_names_no_family_in_code():
    found = [t for f in sorted(CORE.rglob("*.py")) for t in family_tokens(f)]
    assert not found, f"{len(found)} family token(s) in mf_ext/ code:\n" + "\n".join(found)
