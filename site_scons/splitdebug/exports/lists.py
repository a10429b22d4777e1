"""Export lists: the list format, its parser and the GNU ld version script made from it.

Plain data in and out; no SCons here. The list format (documented in README.md, "Export lists"):

    # comment                     everything after '#' is ignored
    [LIBGREET_1]                  a version node; later nodes inherit from the one before
    greet_message                 a C name (matched against the raw, mangled symbol name)
    greet_v*                      wildcards: '*' any run of characters, '?' one character
    (c++)shapes::Circle::*        a demangled C++ name, with ld's `extern "C++"` semantics
    (optional)greet_debug         may be absent (no error when nothing matches it)
    (c++|optional)shapes::dump()  tags combine as in dpkg symbols files

'[' and ']' are literal (C++ names carry `[abi:cxx11]`); '\\*', '\\?' and '\\\\' are a literal '*', '?'
and '\\'. A line that is exactly `[NAME]` is a version node header.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SplitDebugError

TAGS = ("c++", "optional")
NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_HEADER = re.compile(r"\[\s*([^\]]*?)\s*\]")
_TAGS = re.compile(r"\(([^()]*)\)")
# What GNU ld's version-script lexer takes unquoted (ldlex.l, V_IDENTIFIER) besides '::'.
_LD_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$")
_LD_KEYWORDS = frozenset({"global", "local", "extern"})
_C_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
# Prefixes of demangled names that are data about a class rather than one of its functions.
SPECIAL_PREFIXES = ("typeinfo for ", "typeinfo name for ", "vtable for ", "VTT for ",
                     "construction vtable for ", "guard variable for ", "TLS init function for ",
                     "TLS wrapper function for ", "reference temporary ")
THUNK_PREFIXES = ("non-virtual thunk to ", "virtual thunk to ", "covariant return thunk to ")


class ExportListError(SplitDebugError):
    """An export list that cannot be read or parsed: names the file and the line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason


# --------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class ExportEntry:
    """One line of an export list: a name or a pattern, C or demangled C++."""

    text: str  # as written, tags removed (escapes kept)
    line: int
    node: str | None  # version node, None in a list without nodes
    cxx: bool = False
    optional: bool = False
    # (is_wildcard, text) pieces: the pattern with escapes resolved.
    parts: tuple[tuple[bool, str], ...] = field(default=(), compare=False, repr=False)
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.is_glob:  # compiled once: an entry is matched against every exported symbol
            object.__setattr__(self, "_regex", _compile(self.parts))

    @property
    def is_glob(self) -> bool:
        return any(wild for wild, _ in self.parts)

    @property
    def literal(self) -> str:
        """The name itself (escapes resolved); meaningful when not is_glob."""
        return "".join(t for _, t in self.parts)

    def matches(self, name: str, demangled: str) -> bool:
        """ld's rule: C++ entries match the demangled name, C entries the raw one."""
        subject = demangled if self.cxx else name
        if self._regex is None:
            return subject == self.literal
        return self._regex.fullmatch(subject) is not None

    def display(self) -> str:
        tags = [t for t, on in (("c++", self.cxx), ("optional", self.optional)) if on]
        return (f"({'|'.join(tags)})" if tags else "") + self.text


def _compile(parts: tuple[tuple[bool, str], ...]) -> re.Pattern[str]:
    return re.compile("".join((".*" if t == "*" else ".") if wild else re.escape(t) for wild, t in parts),
                      re.DOTALL)


@dataclass(frozen=True)
class VersionNode:
    name: str | None  # None: the anonymous node of a list without headers
    line: int
    entries: tuple[ExportEntry, ...]


@dataclass(frozen=True)
class ExportList:
    source: str
    nodes: tuple[VersionNode, ...]

    @property
    def entries(self) -> tuple[ExportEntry, ...]:
        return tuple(e for n in self.nodes for e in n.entries)

    @property
    def node_names(self) -> frozenset[str]:
        return frozenset(n.name for n in self.nodes if n.name)

    @property
    def has_cxx(self) -> bool:
        return any(e.cxx for e in self.entries)


def read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ExportListError(path, None, f"cannot read {what}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ExportListError(path, None, f"{what} is not UTF-8 text") from None


def load_export_list(path: str | os.PathLike[str]) -> ExportList:
    """Read and parse an export list file; ExportListError when it cannot be read or is invalid."""
    p = os.fspath(path)
    return parse_export_list(read_text(p, "export list"), p)


def parse_export_list(text: str, source: str = "<export list>") -> ExportList:
    nodes: list[VersionNode] = []
    seen_nodes: dict[str, int] = {}
    seen: dict[tuple[bool, str], int] = {}
    current: str | None = None
    current_line = 0
    entries: list[ExportEntry] = []
    anonymous: list[ExportEntry] = []

    def fail(line: int, reason: str) -> ExportListError:
        return ExportListError(source, line, reason)

    def close() -> None:
        if current is not None:
            nodes.append(VersionNode(current, current_line, tuple(entries)))

    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        header = _HEADER.fullmatch(line)
        if header:
            name = header.group(1)
            if not NODE_NAME.fullmatch(name):
                raise fail(number, f"bad version node name {name!r} (letters, digits, '_' and '.')")
            if name in seen_nodes:
                raise fail(number, f"version node [{name}] declared twice (first on line {seen_nodes[name]})")
            if anonymous:
                raise fail(number, f"[{name}] after names outside any version node (line "
                                   f"{anonymous[0].line}): put every name under a [NODE] header, or use none")
            close()
            seen_nodes[name] = number
            current, current_line, entries = name, number, []
            continue
        if line.endswith("{") or line.startswith(("}", "global:", "local:")):
            raise fail(number, "this is ld version-script syntax; write a version node as [NAME] on its own "
                               "line followed by one name per line")
        entry = _parse_entry(line, number, current, fail)
        key = (entry.cxx, entry.literal if not entry.is_glob else entry.text)
        if key in seen:
            raise fail(number, f"{entry.display()} is listed twice (first on line {seen[key]})")
        seen[key] = number
        (entries if current is not None else anonymous).append(entry)
    close()
    if anonymous:
        nodes.insert(0, VersionNode(None, anonymous[0].line, tuple(anonymous)))
    return ExportList(source, tuple(nodes))


def _strip_comment(line: str) -> str:
    out = []
    escaped = False
    for ch in line:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "#":
            break
        else:
            out.append(ch)
    return "".join(out)


def _parse_entry(line: str, number: int, node: str | None,
                 fail: Callable[[int, str], ExportListError]) -> ExportEntry:
    cxx = optional = False
    rest = line
    while (m := _TAGS.match(rest)) is not None:
        for tag in (t.strip() for t in m.group(1).split("|")):
            if tag == "c++":
                cxx = True
            elif tag == "optional":
                optional = True
            else:
                raise fail(number, f"unknown tag ({tag}) (known: {', '.join(f'({t})' for t in TAGS)})")
        rest = rest[m.end():].lstrip()
    if not rest:
        raise fail(number, "a tag without a name")
    if not cxx and any(c.isspace() for c in rest):
        raise fail(number, f"{rest!r}: a C name has no spaces (a demangled C++ name needs the (c++) tag)")
    parts: list[tuple[bool, str]] = []
    chars = iter(rest)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, None)
            if nxt not in ("*", "?", "\\"):
                raise fail(number, f"{rest!r}: '\\' escapes only '*', '?' and '\\'")
            parts.append((False, nxt))
        elif ch in "*?":
            parts.append((True, ch))
        else:
            parts.append((False, ch))
    return ExportEntry(rest, number, node, cxx, optional, tuple(parts))


# --------------------------------------------------------------------------- version script


def version_script(export_list: ExportList) -> str:
    """The GNU ld version script for a list: one node per [NODE], `local: *` in the first one.

    Literal names are quoted (ld then matches them exactly and --no-undefined-version checks they
    exist). Optional names become one-match wildcards so that check skips them. ld takes only some
    characters unquoted; in wildcards any other character becomes '?', a slightly wider match that
    the post-link check (which uses the exact pattern) would report.
    """
    comment = export_list.source.replace("*/", "*_/")
    out = [f"/* Generated by splitdebug from {comment}: edit that file, not this one. */"]
    for index, node in enumerate(export_list.nodes):
        out.append(f"{node.name} {{" if node.name else "{")
        c_names = [_ld_pattern(e) for e in node.entries if not e.cxx]
        cxx_names = [_ld_pattern(e) for e in node.entries if e.cxx]
        if c_names or cxx_names:
            out.append("  global:")
            out.extend(f"    {n};" for n in c_names)
            if cxx_names:
                out.append('    extern "C++" {')
                out.extend(f"      {n};" for n in cxx_names)
                out.append("    };")
        if index == 0:
            out.append("  local:")
            out.append("    *;")
        parent = export_list.nodes[index - 1].name if index else None
        out.append(f"}} {parent};" if parent else "};")
    return "\n".join(out) + "\n"


def _ld_pattern(entry: ExportEntry) -> str:
    if not entry.is_glob and not entry.optional:
        name = entry.literal
        if not entry.cxx and _C_NAME.fullmatch(name) and name not in _LD_KEYWORDS:
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    pieces: list[tuple[bool, str]] = list(entry.parts)
    if not entry.is_glob:  # optional literal: a wildcard matching only itself, e.g. [g]reet_debug
        first = pieces[0][1]
        head = f"[{first}]" if first in _LD_SAFE and not first.isdigit() else "?"
        return head + _ld_unquoted(pieces[1:], at_start=False)
    return _ld_unquoted(pieces, at_start=True)


def _ld_unquoted(parts: Sequence[tuple[bool, str]], *, at_start: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(parts):
        wild, ch = parts[i]
        if wild:
            out.append(ch)
        elif ch == ":" and i + 1 < len(parts) and parts[i + 1] == (False, ":") and (out or not at_start):
            out.append("::")
            i += 1
        elif ch in _LD_SAFE and not (at_start and not out and ch.isdigit()):
            out.append(ch)
        else:
            out.append("?")
        i += 1
    return "".join(out)
