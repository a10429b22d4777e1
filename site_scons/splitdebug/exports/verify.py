"""Checking a linked library against its export list, as GNU ld applies the generated script.

Whatever ld silently drops or lets through is reported: names listed but hidden or missing, exported
names nobody listed (a leak), and C++ classes whose functions are exported without their
`typeinfo for`/`vtable for`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SplitDebugError
from .lists import ExportList, SPECIAL_PREFIXES, THUNK_PREFIXES, load_export_list
from .symbols import DeclaredSymbol, DynamicSymbol, LibrarySymbols, archive_symbols, read_library

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
    for prefix in THUNK_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith(SPECIAL_PREFIXES):
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


def check_declared(export_list: ExportList, declared: Sequence[DeclaredSymbol]) -> list[str]:
    """The other direction: every symbol the library's objects declare as API is in the list, or
    the version script silently hides it and only a consumer's link finds out. One line per name."""
    problems = []
    for sym in declared:
        if sym.demangled.startswith(SPECIAL_PREFIXES + THUNK_PREFIXES):
            continue  # a class's typeinfo/vtable: the class warnings of `check` speak for them
        if not any(e.matches(sym.name, sym.demangled) for e in export_list.entries):
            problems.append(f"{sym.demangled} is declared with "
                            f"default visibility in {sym.object} but not in {export_list.source}: list it, "
                            "or make it hidden")
    return problems
