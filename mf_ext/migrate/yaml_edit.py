"""Comment-preserving edits of block-style YAML files.

``yaml.safe_load`` + ``yaml.safe_dump`` would lose every comment, the key order users chose and the anchors
MindFormers configs use (``train_dataset: &train_dataset``). This module edits the text instead: it indexes the
block mappings of a file by key path, and sets, inserts or deletes keys by rewriting only the affected lines.

Every edit is also applied to a parsed copy of the document, and the edited text is re-parsed and compared with
it: if the two differ (a YAML construct this editor does not understand), the edit is refused with an error
instead of writing a file that means something else.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import yaml

from mf_ext.errors import MfExtError

KeyPath = tuple[str, ...]

# A block-mapping key at the start of a (stripped) line: plain, "double" or 'single' quoted, then ':' + space/EOL.
_KEY_RE = re.compile(
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},&*!|>%@`-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s+|$)(?P<rest>.*)$"""
)
_BLOCK_SCALAR_RE = re.compile(r"^[|>][0-9+-]*$")


_MISSING = object()


class YamlEditError(MfExtError, ValueError):
    """The requested edit cannot be made on this text (names the key path)."""


@dataclass
class _Entry:
    path: KeyPath
    line: int  # index of the line holding the key
    indent: int  # column of the key
    value_col: int  # column where the inline value starts (== len(code) when there is none)
    value_end: int  # column after the inline value (before padding and comment)
    comment_col: int  # column of the trailing comment's '#', -1 if none
    end: int = -1  # index after the last content line of the key's block (children included)

    @property
    def has_inline_value(self) -> bool:
        return self.value_end > self.value_col


def _split_comment(text: str) -> int:
    """Index of the '#' starting a comment in ``text`` (a YAML value), or -1; quotes are respected."""
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or text[i - 1] in " \t[{,:"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return i
        i += 1
    return -1


def _unquote_key(key: str) -> str:
    if key[:1] in "\"'":
        return str(yaml.safe_load(key))
    return key


def _index(lines: list[str]) -> dict[KeyPath, _Entry]:
    """Map every key of the block mappings in ``lines`` (outside sequences and block scalars) to its entry."""
    entries: dict[KeyPath, _Entry] = {}
    stack: list[_Entry] = []
    opaque_indent = -1  # lines deeper than this belong to a sequence item or block scalar: not indexed
    last_content = -1
    for i, raw in enumerate(lines):
        code = raw.rstrip("\r\n")
        stripped = code.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(code) - len(stripped)
        if re.match(r"(---|\.\.\.)(\s|$)", stripped) and indent == 0:
            if last_content < 0 and stripped.startswith("---"):
                continue  # an explicit start of the (only) document
            raise YamlEditError("multi-document YAML files are not supported")
        if opaque_indent >= 0 and indent > opaque_indent:
            last_content = i
            continue
        opaque_indent = -1
        is_item = stripped == "-" or stripped.startswith("- ")
        # Close every open key this line is not nested in; a sequence may sit at its parent key's own indent.
        while stack and (stack[-1].indent > indent or (stack[-1].indent == indent and not is_item)):
            stack.pop().end = last_content + 1
        last_content = i
        if is_item:
            opaque_indent = indent
            continue
        m = _KEY_RE.match(stripped)
        if m is None:
            continue  # continuation of a multi-line flow collection or plain scalar
        if stack and stack[-1].has_inline_value:
            continue
        rest = m.group("rest")
        rest_col = indent + m.start("rest")
        c = _split_comment(rest)
        value = (rest if c < 0 else rest[:c]).rstrip()
        path = (*(stack[-1].path if stack else ()), _unquote_key(m.group("key")))
        entry = _Entry(
            path=path,
            line=i,
            indent=indent,
            value_col=rest_col,
            value_end=rest_col + len(value),
            comment_col=-1 if c < 0 else rest_col + c,
        )
        # An anchor alone ("key: &name") still opens a block mapping below it.
        if re.fullmatch(r"&\S+", value):
            entry.value_end = entry.value_col
        if _BLOCK_SCALAR_RE.match(value):
            opaque_indent = indent
        entries[path] = entry
        stack.append(entry)
    while stack:
        stack.pop().end = last_content + 1
    return entries


def format_scalar(value: Any, like: str = "") -> str:
    """YAML text for a scalar ``value``; strings keep the quote style of ``like`` (the text they replace)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "True" if value else "False"  # MindFormers' configs spell booleans this way
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = yaml.safe_dump(value).split("\n")[0]  # '1.0e-05', '500000.0': forms safe_load reads as float
        return text
    if isinstance(value, str):
        if like.startswith("'") and value.isprintable():  # single quotes would fold newlines
            return "'" + value.replace("'", "''") + "'"
        plain_ok = value.isprintable() and value.strip() == value and "#" not in value and _reads_back(value)
        if like and not like.startswith('"') and plain_ok:
            return value
        if not like and plain_ok and re.fullmatch(r"[A-Za-z_][\w.:/-]*", value):
            return value  # identifiers and dotted class references read best unquoted
        return _double_quoted(value)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_scalar(v) for v in value) + "]"
    raise YamlEditError(f"cannot write a value of type {type(value).__name__} inline: {value!r}")


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar. Whatever is not printable as-is is escaped: YAML has \\x, \\u and \\U escapes
    and, unlike JSON, no surrogate pairs (so ``json.dumps`` is not enough)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _reads_back(text: str) -> bool:
    """True if ``text`` written plain parses back as the same string."""
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _format_block(value: dict, indent: int, step: int, nl: str = "\n") -> list[str]:
    out = []
    for k, v in value.items():
        if isinstance(v, dict) and v:
            out.append(f"{' ' * indent}{k}:{nl}")
            out.extend(_format_block(v, indent + step, step, nl))
        else:
            out.append(f"{' ' * indent}{k}: {format_scalar(v)}{nl}")
    return out


def _dict_get(data: Any, path: KeyPath) -> Any:
    for k in path:
        data = data[k]
    return data


class YamlDocument:
    """A YAML text plus the parsed mapping it must keep meaning; edits update both."""

    def __init__(self, text: str, name: str = "<yaml>"):
        self.name = name
        self.original = text
        self.lines = text.splitlines(keepends=True)
        self.nl = "\r\n" if self.lines and self.lines[0].endswith("\r\n") else "\n"  # keep Windows files Windows
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += self.nl
        try:
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
            problem = ", ".join(p for p in parts if p) or str(exc).splitlines()[0]
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise YamlEditError(f"{name} is not valid YAML{where}: {problem}") from None
        self._entries = _index(self.lines)

    # -- reading ---------------------------------------------------------------------------------------------
    def has(self, path: KeyPath) -> bool:
        try:
            _dict_get(self.data, path)
        except (KeyError, TypeError):
            return False
        return True

    def get(self, path: KeyPath, default: Any = None) -> Any:
        try:
            return _dict_get(self.data, path)
        except (KeyError, TypeError):
            return default

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def _entry(self, path: KeyPath) -> _Entry:
        entry = self._entries.get(path)
        if entry is None:
            raise YamlEditError(
                f"{self.name}: key {'.'.join(map(str, path))!r} is not in a block mapping this editor can change "
                "(flow style, inside a list, or behind an alias)"
            )
        return entry

    def _step(self) -> int:
        """Indent step of the file (the smallest positive child indent), 2 by default."""
        steps = [e.indent for e in self._entries.values() if len(e.path) == 2]
        return min(steps) if steps else 2

    def _reindex(self) -> None:
        self._entries = _index(self.lines)

    # -- editing ---------------------------------------------------------------------------------------------
    def set(self, path: KeyPath, value: Any, *, after: tuple[str, ...] = ()) -> None:
        """Set ``path`` to ``value`` (a scalar, list or dict); a missing key is inserted into its parent mapping,
        right after the first existing sibling named in ``after`` (else at the end of the parent)."""
        old = self.get(path, _MISSING)
        if old is not _MISSING and old == value and isinstance(old, bool) == isinstance(value, bool):
            return  # 500000 and 500000.0 are the same setting: leave the user's spelling alone
        if path in self._entries:
            self._replace(path, value)
        else:
            self._insert(path, value, after)
        parent = _dict_get(self.data, path[:-1])
        parent[path[-1]] = copy.deepcopy(value)

    def delete(self, path: KeyPath) -> None:
        """Remove ``path`` (and its block) if present."""
        if not self.has(path):
            return
        e = self._entry(path)
        del self.lines[e.line : e.end]
        parent = _dict_get(self.data, path[:-1])
        del parent[path[-1]]
        self._reindex()
        if not parent and len(path) > 1:
            self._replace(path[:-1], {})  # "key:" alone would now read as null

    def _replace(self, path: KeyPath, value: Any) -> None:
        e = self._entry(path)
        code = self.lines[e.line].rstrip("\r\n")
        old_value = code[e.value_col : e.value_end]
        comment = code[e.comment_col :] if e.comment_col >= 0 else ""
        key_part = code[: e.value_col].rstrip()
        if isinstance(value, dict) and value:
            new_head = key_part + (" " + comment if comment else "")
            block = _format_block(value, e.indent + self._step(), self._step(), self.nl)
            self.lines[e.line : e.end] = [new_head + self.nl, *block]
        else:
            text = format_scalar(value, like=old_value)
            head = f"{key_part} {text}"
            if comment:
                # keep the comment in its column when the new value fits, so aligned comments stay aligned
                head = (
                    head.ljust(e.comment_col - 1) + " " + comment if len(head) < e.comment_col else head + " " + comment
                )
            self.lines[e.line : e.end] = [head + self.nl]
        self._reindex()

    def _insert(self, path: KeyPath, value: Any, after: tuple[str, ...]) -> None:
        parent_path = path[:-1]
        if not isinstance(self.get(parent_path), dict):
            raise YamlEditError(
                f"{self.name}: cannot add {'.'.join(path)!r}: {'.'.join(parent_path)!r} is not a mapping"
            )
        children = [e for p, e in self._entries.items() if p[:-1] == parent_path and len(p) == len(path)]
        if parent_path:
            parent = self._entry(parent_path)
            if parent.has_inline_value:
                raise YamlEditError(f"{self.name}: cannot add to {'.'.join(parent_path)!r}: written in flow style")
            indent = children[0].indent if children else parent.indent + self._step()
            where = parent.end
        else:
            indent = 0
            where = len(self.lines)
        for sibling in after:
            e = self._entries.get((*parent_path, sibling))
            if e is not None:
                where = e.end
                break
        nl = self.nl
        if isinstance(value, dict) and value:
            new = [f"{' ' * indent}{path[-1]}:{nl}", *_format_block(value, indent + self._step(), self._step(), nl)]
        else:
            new = [f"{' ' * indent}{path[-1]}: {format_scalar(value)}{nl}"]
        self.lines[where:where] = new
        self._reindex()

    def check(self) -> None:
        """Refuse the edited text if it does not parse to exactly the edited mapping."""
        reparsed = yaml.safe_load(self.text)
        if reparsed != self.data:
            raise YamlEditError(
                f"{self.name}: the edited text does not parse to the intended configuration; "
                "the file uses a YAML construct this editor does not support"
            )
