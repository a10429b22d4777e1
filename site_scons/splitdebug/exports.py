"""Export lists: parsing, GNU ld version scripts, and checking a linked library against its list.

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

The checks mirror what GNU ld does with the generated script, so whatever ld silently drops or
lets through is reported: names listed but hidden or missing, exported names nobody listed (a
leak), and C++ classes whose functions are exported without their `typeinfo for`/`vtable for`.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import elfread
from .errors import ElfError, SplitDebugError, ToolError

TAGS = ("c++", "optional")
NODE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_HEADER = re.compile(r"\[\s*([^\]]*?)\s*\]")
_TAGS = re.compile(r"\(([^()]*)\)")
# What GNU ld's version-script lexer takes unquoted (ldlex.l, V_IDENTIFIER) besides '::'.
_LD_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$")
_LD_KEYWORDS = frozenset({"global", "local", "extern"})
_C_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
# Prefixes of demangled names that are data about a class rather than one of its functions.
_SPECIAL_PREFIXES = ("typeinfo for ", "typeinfo name for ", "vtable for ", "VTT for ",
                     "construction vtable for ", "guard variable for ", "TLS init function for ",
                     "TLS wrapper function for ", "reference temporary ")
_THUNK_PREFIXES = ("non-virtual thunk to ", "virtual thunk to ", "covariant return thunk to ")


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


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ExportListError(path, None, f"cannot read {what}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ExportListError(path, None, f"{what} is not UTF-8 text") from None


def load_export_list(path: str | os.PathLike[str]) -> ExportList:
    """Read and parse an export list file; ExportListError when it cannot be read or is invalid."""
    p = os.fspath(path)
    return parse_export_list(_read_text(p, "export list"), p)


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


# --------------------------------------------------------------------------- reading a library


@dataclass(frozen=True)
class DynamicSymbol:
    """One exported symbol: defined in .dynsym, not a toolchain or version-node symbol."""

    name: str
    demangled: str
    type: str  # FUNC, OBJECT, TLS, IFUNC, NOTYPE…
    version: str | None  # the version node it is bound to; None when unversioned

    def display(self) -> str:
        return self.demangled if self.demangled != self.name else self.name


@dataclass(frozen=True)
class LibrarySymbols:
    path: str
    exported: tuple[DynamicSymbol, ...]
    version_nodes: frozenset[str]
    internal: tuple[tuple[str, str], ...]  # (name, demangled) defined in .symtab, not exported
    has_symtab: bool


def read_library(path: str | os.PathLike[str], *, cxxfilt: str | None = None) -> LibrarySymbols:
    """The exported symbols of a shared object (and, from .symtab, the defined ones it hides).

    ElfError for a file that is not a readable ELF; ToolError when c++filt fails.
    """
    p = os.fspath(path)
    info = elfread.read_elf(p)
    if info.section(".dynsym") is None:
        raise ElfError(p, "no .dynsym section (not a dynamically linked object)")
    dynsym = list(elfread.iter_symbols(p, ".dynsym"))
    nodes, versions = elfread.symbol_versions(p, info, len(dynsym))
    exported: list[tuple[str, str, str | None]] = []
    for index, (name, stype, bind, defined) in enumerate(dynsym):
        if not name or not defined or bind == "STB_LOCAL":
            continue
        if name in elfread.TOOLCHAIN_SYMBOLS or name in nodes:
            continue
        exported.append((name, _short_type(stype), versions[index] if index < len(versions) else None))
    exported_names = {n for n, _, _ in exported}
    internal: list[str] = []
    has_symtab = info.section(".symtab") is not None
    if has_symtab:
        seen: set[str] = set()
        for name, stype, _, defined in elfread.iter_symbols(p, ".symtab"):
            if (defined and name and stype not in ("STT_FILE", "STT_SECTION") and name not in exported_names
                    and name not in seen and name not in elfread.TOOLCHAIN_SYMBOLS):
                seen.add(name)
                internal.append(name)
    demangled = demangle([n for n, _, _ in exported] + internal, cxxfilt=cxxfilt)
    return LibrarySymbols(
        path=p,
        exported=tuple(sorted((DynamicSymbol(n, demangled.get(n, n), t, v) for n, t, v in exported),
                              key=lambda s: (s.name, s.version or ""))),
        version_nodes=nodes,
        internal=tuple((n, demangled.get(n, n)) for n in internal),
        has_symtab=has_symtab,
    )


def _short_type(stype: str) -> str:
    short = stype.removeprefix("STT_")
    return {"GNU_IFUNC": "IFUNC", "LOOS": "IFUNC"}.get(short, short)


def demangle(names: Iterable[str], *, cxxfilt: str | None = None) -> dict[str, str]:
    """Demangled form of each mangled (`_Z…`) name: one c++filt run for all of them."""
    mangled = sorted({n for n in names if n.startswith("_Z")})
    if not mangled:
        return {}
    tool = cxxfilt or os.environ.get("CXXFILT", "c++filt")
    argv = [tool]
    try:
        proc = subprocess.run(argv, input="\n".join(mangled) + "\n", capture_output=True, text=True)
    except OSError as err:
        raise ToolError(tool, argv, err.strerror or str(err)) from None
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(mangled):
        raise ToolError(tool, argv, proc.stderr or f"expected {len(mangled)} lines, got {len(lines)}")
    return dict(zip(mangled, lines, strict=True))


def archive_symbols(archives: Sequence[str | os.PathLike[str]], *, nm: str | None = None) -> dict[str, str]:
    """Global symbols the static archives define: name -> archive (the first one, as ld searches).

    One `nm` run for all of them. ToolError when nm fails.
    """
    paths = [os.fspath(a) for a in archives]
    if not paths:
        return {}
    tool = nm or os.environ.get("NM", "nm")
    argv = [tool, "-A", "-P", "-g", "--defined-only", *paths]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as err:
        raise ToolError(paths[0], argv, err.strerror or str(err)) from None
    if proc.returncode != 0:
        raise ToolError(paths[0], argv, proc.stderr)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        where, sep, rest = line.partition(": ")  # "lib.a[member.o]: name T value size"
        fields = rest.split()
        if sep and fields:
            out.setdefault(fields[0], where.split("[", 1)[0])
    return out


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class CheckResult:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check(export_list: ExportList, symbols: LibrarySymbols,
          archives: Mapping[str, str] | None = None) -> CheckResult:
    """Compare what a library exports with its list; one self-contained line per problem.

    `archives` (name -> static archive, see archive_symbols) are the symbols of the static archives
    linked in: one of them exported only because a wildcard matches it is a leak too (ld's
    --exclude-libs,ALL hides them; without it a pattern meant for the library's own names lets
    them through).
    """
    errors: list[str] = []
    archives = archives or {}
    lib, src = symbols.path, export_list.source
    entries = export_list.entries
    matched: dict[int, list[DynamicSymbol]] = {i: [] for i in range(len(entries))}
    # Literal names by dictionary, wildcards one by one: libraries export tens of thousands.
    by_name: dict[tuple[bool, str], list[int]] = {}
    globs = []
    for i, e in enumerate(entries):
        if e.is_glob:
            globs.append(i)
        else:
            by_name.setdefault((e.cxx, e.literal), []).append(i)
    for sym in symbols.exported:
        hits = by_name.get((False, sym.name), []) + by_name.get((True, sym.demangled), [])
        hits += [i for i in globs if entries[i].matches(sym.name, sym.demangled)]
        for i in hits:
            matched[i].append(sym)
        if hits and sym.name in archives and all(entries[i].is_glob for i in hits):
            first = entries[hits[0]]
            errors.append(f"{lib}: {sym.display()} from static archive {archives[sym.name]} is exported only "
                          f"because {first.display()} ({src}:{first.line}) matches it (a leak: list it by name "
                          f"if it is API, else narrow the pattern or link with -Wl,--exclude-libs,ALL)")
        if not hits:
            mangled = f" [{sym.name}]" if sym.demangled != sym.name else ""
            errors.append(f"{lib}: {sym.display()}{mangled} is exported but not in {src} (a leak: give it "
                          f"hidden visibility, or list it)")
    if export_list.node_names and not symbols.version_nodes and symbols.exported:
        errors.append(f"{lib}: has no version nodes, but {src} declares "
                      f"{', '.join(sorted(export_list.node_names))}: was it linked with its version script?")
    for i, entry in enumerate(entries):
        where = f"{src}:{entry.line}"
        if matched[i]:
            if not entry.is_glob and entry.node and symbols.version_nodes:
                wrong = sorted({s.version or "no version" for s in matched[i] if s.version != entry.node})
                if wrong:
                    errors.append(f"{where}: {entry.display()} is listed under [{entry.node}] but exported "
                                  f"with {', '.join(wrong)}")
            continue
        if entry.optional:
            continue
        hidden = [d if entry.cxx else n for n, d in symbols.internal if entry.matches(n, d)]
        if not entry.is_glob:
            if hidden:
                errors.append(f"{where}: {entry.display()} is listed but hidden: defined in {lib} without "
                              f"default visibility, so ld dropped it (mark it "
                              f"__attribute__((visibility(\"default\"))))")
            elif symbols.has_symtab:
                errors.append(f"{where}: {entry.display()} is listed but missing: {lib} does not define it")
            else:
                errors.append(f"{where}: {entry.display()} is listed but not exported by {lib}")
        elif hidden:
            shown = ", ".join(sorted(hidden)[:3]) + (", …" if len(hidden) > 3 else "")
            errors.append(f"{where}: {entry.display()} matches no exported symbol, only hidden ones "
                          f"({shown}): mark them __attribute__((visibility(\"default\")))")
        else:
            errors.append(f"{where}: {entry.display()} matches no symbol of {lib} (mark it (optional) "
                          f"if it may be absent)")
    return CheckResult(tuple(errors), tuple(_class_warnings(symbols, src)))


def _class_warnings(symbols: LibrarySymbols, src: str) -> list[str]:
    """Classes whose member functions are exported while their typeinfo or vtable stay hidden."""
    exported = {s.demangled for s in symbols.exported}
    internal = {d for _, d in symbols.internal}
    classes: dict[str, None] = {}
    for sym in symbols.exported:
        if sym.type in ("FUNC", "IFUNC") and sym.name.startswith("_Z"):
            owner = function_class(sym.demangled)
            if owner:
                classes.setdefault(owner)
    warnings = []
    for owner in sorted(classes):
        missing = [f"{kind} for {owner}" for kind in ("typeinfo", "vtable")
                   if f"{kind} for {owner}" in internal and f"{kind} for {owner}" not in exported]
        if missing:
            add = ", ".join(f"(c++){m}" for m in missing)
            warnings.append(f"{symbols.path}: class {owner} exports member functions but not "
                            f"{' or '.join(repr(m) for m in missing)} (dynamic_cast, typeid, catch and derived "
                            f"classes in other objects need them): add {add} to {src}")
    return warnings


def function_class(demangled: str) -> str | None:
    """`ns::Klass` for `ns::Klass::method(int) const`; None for free functions and non-functions."""
    name = demangled
    for prefix in _THUNK_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith(_SPECIAL_PREFIXES):
        return None
    name = re.sub(r" \[clone [^\]]*\]", "", name)
    close = name.rfind(")")
    if close < 0:
        return None
    depth = 0
    for pos in range(close, -1, -1):
        if name[pos] == ")":
            depth += 1
        elif name[pos] == "(":
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    qualified = re.sub(r"\[abi:[^\]]*\]", "", name[:pos]).strip()
    components = _split_scope(qualified)
    if components is None or len(components) < 2:
        return None
    return "::".join(components[:-1])


def _split_scope(qualified: str) -> list[str] | None:
    """Split at top-level '::' (outside <>), dropping a return type before the name."""
    op = qualified.find("::operator")
    tail = ""
    if op >= 0:  # operator<, operator() …: the operator is the last component whatever its characters
        qualified, tail = qualified[:op], qualified[op + 2:]
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(qualified):
        ch = qualified[i]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0 and ch == " ":
            start = i + 1  # a return type (templates): the name starts after it
            parts = []
        elif depth == 0 and qualified.startswith("::", i):
            parts.append(qualified[start:i])
            start = i + 2
            i += 1
        i += 1
    if depth != 0:
        return None
    parts.append(qualified[start:])
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def check_library(library: Path, export_list: Path) -> list[str]:
    """Problems of `library` against `export_list`, one line each; [] when it exports exactly the list.

    A library that cannot be read is a problem in the list, never an exception. Raises
    SplitDebugError (ExportListError) only when the export list cannot be read or parsed.
    Warnings (classes without exported typeinfo) are not problems: see check_library_result.
    """
    return list(check_library_result(library, export_list).errors)


def check_library_result(library: Path, export_list: Path, *, archives: Sequence[Path] = (),
                         cxxfilt: str | None = None) -> CheckResult:
    """check_library, with the warnings too; `archives`: static archives linked into the library."""
    parsed = load_export_list(export_list)
    try:
        symbols = read_library(library, cxxfilt=cxxfilt)
        from_archives = archive_symbols(archives)
    except SplitDebugError as err:
        return CheckResult((str(err),), ())
    return check(parsed, symbols, from_archives)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class GnuHashStats:
    """The .gnu.hash table. A successful lookup of the k-th name of a bucket's chain costs k steps.

    total_steps: the sum over every name in the table; ideal_steps: the same sum if the names were
    spread over the buckets as evenly as possible; utilisation = ideal_steps / total_steps (1.0 is
    a perfectly balanced table; 1.0 too when the table is empty).
    """

    size: int  # bytes
    buckets: int
    bloom_words: int
    names: int
    empty_buckets: int
    longest_chain: int
    total_steps: int
    ideal_steps: int

    @property
    def utilisation(self) -> float:
        return self.ideal_steps / self.total_steps if self.total_steps else 1.0


@dataclass(frozen=True)
class ExportReport:
    path: str
    exported: tuple[DynamicSymbol, ...]
    version_nodes: frozenset[str]
    plt_relocations: int
    dynamic_relocations: int
    gnu_hash: GnuHashStats | None

    def as_json(self) -> dict[str, object]:
        h = self.gnu_hash
        return {
            "version": 1,
            "library": self.path,
            "exported_count": len(self.exported),
            "exported": [{"name": s.name, "demangled": s.demangled, "type": s.type, "version": s.version}
                         for s in self.exported],
            "version_nodes": sorted(self.version_nodes),
            "plt_relocations": self.plt_relocations,
            "dynamic_relocations": self.dynamic_relocations,
            "gnu_hash": None if h is None else {
                "size": h.size, "buckets": h.buckets, "bloom_words": h.bloom_words, "names": h.names,
                "empty_buckets": h.empty_buckets, "longest_chain": h.longest_chain,
                "total_steps": h.total_steps, "ideal_steps": h.ideal_steps,
                "utilisation": round(h.utilisation, 4),
            },
        }


def report_library(path: str | os.PathLike[str], *, cxxfilt: str | None = None) -> ExportReport:
    """Exports, PLT relocations and hash-table quality of one shared object."""
    symbols = read_library(path, cxxfilt=cxxfilt)
    info = elfread.read_elf(path)
    plt = sum(_relocation_count(info, s) for s in (".rela.plt", ".rel.plt"))
    dyn = sum(_relocation_count(info, s) for s in (".rela.dyn", ".rel.dyn"))
    sec = info.section(".gnu.hash")
    stats = None if sec is None else gnu_hash_stats(elfread.section_bytes(path, info, ".gnu.hash") or b"",
                                                     info.elfclass, info.little_endian)
    return ExportReport(symbols.path, symbols.exported, symbols.version_nodes, plt, dyn, stats)


def _relocation_count(info: elfread.ElfInfo, name: str) -> int:
    sec = info.section(name)
    if sec is None:
        return 0
    rela = sec.type == "SHT_RELA"
    entsize = (24 if rela else 16) if info.elfclass == 64 else (12 if rela else 8)
    return sec.size // entsize


def gnu_hash_stats(data: bytes, elfclass: int, little_endian: bool) -> GnuHashStats:
    """Chain lengths of a .gnu.hash section (its bytes), as lookup steps."""
    e = "<" if little_endian else ">"
    if len(data) < 16:
        raise ElfError("<.gnu.hash>", ".gnu.hash is too short")
    nbuckets, symoffset, bloom_size, _shift = struct.unpack_from(e + "4I", data, 0)
    word = 8 if elfclass == 64 else 4
    buckets_at = 16 + bloom_size * word
    chains_at = buckets_at + 4 * nbuckets
    if chains_at > len(data):
        raise ElfError("<.gnu.hash>", ".gnu.hash header runs past the section")
    buckets = struct.unpack_from(f"{e}{nbuckets}I", data, buckets_at)
    nchains = (len(data) - chains_at) // 4
    chains = struct.unpack_from(f"{e}{nchains}I", data, chains_at)
    lengths = []
    for start in buckets:
        length = 0
        if start:
            index = start - symoffset
            while 0 <= index < nchains:
                length += 1
                if chains[index] & 1:
                    break
                index += 1
        lengths.append(length)
    names = sum(lengths)
    return GnuHashStats(
        size=len(data), buckets=nbuckets, bloom_words=bloom_size, names=names,
        empty_buckets=sum(1 for n in lengths if n == 0), longest_chain=max(lengths, default=0),
        total_steps=sum(n * (n + 1) // 2 for n in lengths), ideal_steps=ideal_steps(names, nbuckets),
    )


def ideal_steps(names: int, buckets: int) -> int:
    """Lookup steps for `names` names spread as evenly as possible over `buckets` chains."""
    if not buckets:
        return 0
    q, r = divmod(names, buckets)
    return r * (q + 1) * (q + 2) // 2 + (buckets - r) * q * (q + 1) // 2


# --------------------------------------------------------------------------- ABI baseline


@dataclass(frozen=True)
class BaselineSymbol:
    """One symbol of a baseline: an export-list entry or a dpkg symbols-file line."""

    entry: ExportEntry
    version: str | None = None  # dpkg: name@VERSION ("Base" = unversioned); None = any
    regex: bool = False
    symver: bool = False  # dpkg (symver): the name is a version; all its symbols

    def matches(self, sym: DynamicSymbol) -> bool:
        if self.symver:
            return sym.version == self.entry.literal
        if self.version is not None and self.version != (sym.version or "Base"):
            return False
        if self.regex:
            return re.search(self.entry.literal, sym.demangled if self.entry.cxx else sym.name) is not None
        return self.entry.matches(sym.name, sym.demangled)

    def display(self) -> str:
        return self.entry.display() + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class Comparison:
    lost: tuple[str, ...]  # in the baseline, no longer exported
    new: tuple[str, ...]  # exported, not in the baseline


def load_baseline(path: str | os.PathLike[str], fmt: str = "auto", *, arch: str = "amd64") -> list[BaselineSymbol]:
    """An export list or a dpkg symbols file (DEBIAN/symbols, debian/libfoo1.symbols)."""
    p = os.fspath(path)
    text = _read_text(p, "baseline")
    if fmt == "auto":
        fmt = "dpkg" if _looks_like_dpkg(text) else "list"
    if fmt == "dpkg":
        return parse_dpkg_symbols(text, p, arch=arch)
    return [BaselineSymbol(e) for e in parse_export_list(text, p).entries]


def _looks_like_dpkg(text: str) -> bool:
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first = line.split()
        return not line[0].isspace() and len(first) >= 2 and ".so" in first[0]
    return False


_DPKG_ARCH = re.compile(r"arch=(.+)")


def parse_dpkg_symbols(text: str, source: str, *, arch: str = "amd64") -> list[BaselineSymbol]:
    """Symbols of a dpkg symbols file (deb-symbols(5)): ` [(tags)]name@VERSION minver [id]`."""
    out: list[BaselineSymbol] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "|", "*")) or not line[0].isspace():
            continue  # comments, alternative dependencies, meta fields, library headers
        body = line.strip()
        if body.startswith(("|", "*")):
            continue
        tags: list[str] = []
        if body.startswith("("):
            end = body.find(")")
            if end < 0:
                raise ExportListError(source, number, "unterminated (tags)")
            tags = [t.strip() for t in body[1:end].split("|")]
            body = body[end + 1:]
        if body.startswith('"'):
            end = body.find('"', 1)
            if end < 0:
                raise ExportListError(source, number, "unterminated quoted symbol")
            spec = body[1:end]
        else:
            spec = body.split()[0] if body.split() else ""
        if any(_arch_excluded(t, arch) for t in tags):
            continue
        optional = "optional" in tags
        if "symver" in tags:  # ` (symver)LIBFOO_1 1.0`: every symbol of that version
            out.append(BaselineSymbol(_literal_entry(spec, number, False, optional), None, symver=True))
            continue
        name, at, version = spec.rpartition("@")
        if not at or not name:
            raise ExportListError(source, number, f"{spec!r}: expected name@VERSION")
        out.append(BaselineSymbol(_literal_entry(name, number, "c++" in tags, optional), version,
                                  regex="regex" in tags))
    return out


def _literal_entry(name: str, line: int, cxx: bool, optional: bool) -> ExportEntry:
    return ExportEntry(name, line, None, cxx, optional, tuple((False, c) for c in name))


def _arch_excluded(tag: str, arch: str) -> bool:
    """dpkg's (arch=…), (arch-bits=…), (arch-endian=…) tags, for `arch` (a 64-bit little-endian one)."""
    if tag.startswith("arch-bits="):
        return tag != "arch-bits=64"
    if tag.startswith("arch-endian="):
        return tag != "arch-endian=little"
    m = _DPKG_ARCH.fullmatch(tag)
    if not m:
        return False
    arches = m.group(1).split()
    if all(a.startswith("!") for a in arches):
        return f"!{arch}" in arches
    return arch not in arches and not any(a in ("any", "linux-any", f"any-{arch}") for a in arches)


def compare(baseline: Sequence[BaselineSymbol], symbols: LibrarySymbols) -> Comparison:
    """dpkg-gensymbols' view: symbols lost since the baseline and symbols new in the library."""
    lost = [b.display() for b in baseline
            if not b.entry.optional and not any(b.matches(s) for s in symbols.exported)]
    new = [s.display() + (f"@{s.version}" if s.version else "") for s in symbols.exported
           if not any(b.matches(s) for b in baseline)]
    return Comparison(tuple(lost), tuple(new))
