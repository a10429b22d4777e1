"""The benchmark corpus: a staging tree of distinct unstripped ELF files built from real sources.

The sources are Debian's zlib, lua5.4 and libyaml (`../shared/corpus/fetch.sh DIR` fetches them).
Every program of those sources is linked statically against its package's objects, and each
package is also linked as a shared library; the list of those "recipes" is cycled through until
the tree has the number of files asked for. Each file also links a one-line tag object of its
own, so every file has its own contents and build-id (file i and file i + len(recipes) are
variants of the same program). zlib's programs also carry lua's objects, as a program embedding an
interpreter would, so that 150 files weigh about the 131 MB that ANCHORS.md measured on.

Used by check_bench.py (`build_tree`) and by `bench/run` (`build_tree`, and `plan_links` for the
generated SConstruct of the SCons benchmark). Everything is cached in the work directory: objects
are compiled once, a tree is linked once per (name, number of files).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CFLAGS = ["-g", "-O2", "-fPIC", "-w"]

# package -> (library sources, program sources, extra cflags, libs)
PACKAGES: dict[str, tuple[str, str, list[str], list[str]]] = {
    "zlib": ("src-zlib/*.c", "src-zlib/test/*.c src-zlib/examples/*.c", [], ["-lm", "-ldl"]),
    "lua": ("src-lua5.4/src/l*.c", "src-lua5.4/src/lua.c src-lua5.4/src/luac.c",
            ["-DLUA_USE_LINUX", "-DLUA_COMPAT_5_3"], ["-lm", "-ldl"]),
    "yaml": ("src-libyaml/src/*.c", "src-libyaml/tests/*.c",
             ["-Isrc-libyaml/include", "-DYAML_VERSION_MAJOR=0", "-DYAML_VERSION_MINOR=2",
              "-DYAML_VERSION_PATCH=5", '-DYAML_VERSION_STRING="0.2.5"'], []),
}
PROGRAM_FILES = {"lua.c", "luac.c"}
# zlib's programs also carry lua's objects (as a program embedding an interpreter would), so the
# tree's size is close to the 131 MB of lua + zlib that ANCHORS.md measured find-debuginfo on.
EMBED = {"zlib": ["lua"]}
LIBDIR = "usr/lib/x86_64-linux-gnu"
BINDIR = "usr/bin"


@dataclass(frozen=True)
class Unit:
    """One source file and the object it compiles to."""

    pkg: str
    src: Path
    obj: Path
    flags: tuple[str, ...]  # the package's extra flags, -I paths absolute


@dataclass(frozen=True)
class Link:
    """One file of the tree: what to link, and where it goes (relative to the tree's root)."""

    index: int
    rel: str
    kind: str  # "program" or "shared_library"
    pkg: str
    main: Unit | None          # the program's own source (None for a library)
    units: tuple[Unit, ...]    # the package's library units, then embedded packages' ones
    libs: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def check_sources(corpus: Path) -> None:
    if not (corpus / "src-zlib").is_dir():
        raise SystemExit(f"bench: no sources in {corpus}: run ../shared/corpus/fetch.sh {corpus}")


def compile_units(corpus: Path, objdir: Path, jobs: int) -> dict[str, tuple[list[Unit], list[Unit]]]:
    """Compile every source once (cached): (library units, program units) per package.

    Sources that do not compile on this machine are left out.
    """
    out: dict[str, tuple[list[Unit], list[Unit]]] = {}
    todo: list[Unit] = []
    for pkg, (lib_glob, prog_glob, flags, _) in PACKAGES.items():
        libs = sorted(p for g in lib_glob.split() for p in corpus.glob(g) if p.name not in PROGRAM_FILES)
        progs = sorted(p for g in prog_glob.split() for p in corpus.glob(g))
        pflags = tuple(f.replace("-Isrc-", f"-I{corpus}/src-") for f in flags)
        lib_units: list[Unit] = []
        prog_units: list[Unit] = []
        for src, units in [(s, lib_units) for s in libs] + [(s, prog_units) for s in progs]:
            obj = objdir / pkg / (src.relative_to(corpus).as_posix().replace("/", "_") + ".o")
            unit = Unit(pkg, src, obj, pflags)
            units.append(unit)
            todo.append(unit)
        out[pkg] = (lib_units, prog_units)

    def compile_one(unit: Unit) -> Unit | None:
        unit.obj.parent.mkdir(parents=True, exist_ok=True)
        if unit.obj.exists():
            return unit
        tmp = unit.obj.with_suffix(".tmp.o")
        proc = run(["gcc", *CFLAGS, *unit.flags, f"-I{unit.src.parent}", "-c", "-o", str(tmp), str(unit.src)])
        if proc.returncode != 0:
            return None
        os.replace(tmp, unit.obj)
        return unit

    with ThreadPoolExecutor(jobs) as pool:
        ok = set(filter(None, pool.map(compile_one, todo)))
    return {pkg: ([u for u in lu if u in ok], [u for u in pu if u in ok]) for pkg, (lu, pu) in out.items()}


def defines_main(obj: Path) -> bool:
    out = run(["nm", "--defined-only", str(obj)]).stdout
    return any(line.split()[-2:] == ["T", "main"] for line in out.splitlines())


def plan_links(units: dict[str, tuple[list[Unit], list[Unit]]], files: int) -> list[Link]:
    """The tree's `files` files: the recipes (one library per package, every program that has a
    main) cycled through; file i is variant i // len(recipes) of its recipe."""
    recipes: list[tuple[str, str, Unit | None]] = []  # (package, output name, program unit or None)
    for pkg, (_, prog_units) in units.items():
        recipes.append((pkg, f"lib{pkg}", None))
        recipes += [(pkg, u.src.name.removesuffix(".c"), u) for u in prog_units if defines_main(u.obj)]
    links = []
    for i in range(files):
        pkg, name, prog = recipes[i % len(recipes)]
        variant = i // len(recipes)
        lib_units = tuple(units[pkg][0])
        if prog is None:
            links.append(Link(i, f"{LIBDIR}/{name}-{variant}.so.1", "shared_library", pkg, None, lib_units,
                              ("-lm",)))
        else:
            embedded = tuple(u for other in EMBED.get(pkg, []) for u in units[other][0])
            links.append(Link(i, f"{BINDIR}/{name}-{variant}", "program", pkg, prog, lib_units + embedded,
                              tuple(PACKAGES[pkg][3])))
    return links


def tag_source(i: int) -> str:
    return f'__attribute__((used)) const char splitdebug_bench_tag[] = "{i}";\n'


def tag_object(tagdir: Path, i: int) -> Path:
    """A tiny object that makes file i's contents, and so its build-id, its own."""
    obj = tagdir / f"tag{i}.o"
    if not obj.exists():
        tagdir.mkdir(parents=True, exist_ok=True)
        tmp = tagdir / f"tag{i}.tmp.o"
        subprocess.run(["gcc", "-g", "-fPIC", "-c", "-x", "c", "-o", str(tmp), "-"], input=tag_source(i),
                       text=True, check=True)
        os.replace(tmp, obj)
    return obj


def link_argv(link: Link, out: Path, tag: Path) -> list[str]:
    objs = [str(u.obj) for u in link.units]
    tail = [str(tag), "-Wl,--build-id=sha1"]
    if link.kind == "shared_library":
        return ["gcc", "-shared", "-g", f"-Wl,-soname,{out.name}", "-o", str(out), *objs, *tail, *link.libs]
    assert link.main is not None
    return ["gcc", "-g", "-o", str(out), str(link.main.obj), *objs, *tail, *link.libs]


def build_tree(corpus: Path, work: Path, files: int, jobs: int, name: str = "unstripped") -> Path:
    """The unstripped staging tree work/<name> (cached: rebuilt only when `files` changes)."""
    check_sources(corpus)
    tree = work / name
    stamp = work / f"{name}.{files}.done"
    if stamp.exists() and tree.is_dir():
        return tree
    for old in work.glob(f"{name}.*.done"):
        old.unlink()
    shutil.rmtree(tree, ignore_errors=True)
    units = compile_units(corpus, work / "obj", jobs)
    links = plan_links(units, files)
    tags = work / "obj" / "tags"
    with ThreadPoolExecutor(jobs) as pool:
        tag_objs = list(pool.map(lambda link: tag_object(tags, link.index), links))

    def do_link(item: tuple[Link, Path]) -> str | None:
        link, tag = item
        out = tree / link.rel
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = run(link_argv(link, out, tag))
        return None if proc.returncode == 0 else f"{out.name}: {proc.stderr.strip().splitlines()[-1:]}"

    with ThreadPoolExecutor(jobs) as pool:
        failed = [f for f in pool.map(do_link, zip(links, tag_objs, strict=True)) if f]
    for f in failed:
        print(f"bench: link failed (skipped): {f}", file=sys.stderr)
    (tree / "usr/share/doc/bench").mkdir(parents=True, exist_ok=True)
    (tree / "usr/share/doc/bench/README").write_text("benchmark tree\n")
    stamp.write_text("")
    return tree


def tree_stats(root: Path) -> tuple[int, int]:
    """(regular files, bytes) under root; symlinks are not followed or counted."""
    n = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink() and p.is_file():
                n += 1
                size += p.stat().st_size
    return n, size
