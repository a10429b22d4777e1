"""Helpers for tests/test_symbolize.py: programs to crash and to compare, and the comparison with
eu-addr2line (-f -i -C: function names innermost first, file:line of each)."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from splitdebug.symbolize import Options, Symbolizer
from splitdebug.symbolize.inputs import Request

CRASH_LIB = """\
#include <stdlib.h>
static void __attribute__((noinline)) lib_fail(int depth) { if (depth > 0) abort(); }  /* LIB_FAIL */
void __attribute__((noinline)) lib_run(int depth) { lib_fail(depth); lib_fail(depth - 1); }  /* LIB_RUN */
"""
CRASH_PROG = """\
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>
void lib_run(int depth);
static void on_abort(int sig) {
    void *frames[64];
    int n = backtrace(frames, 64);  /* ON_ABORT */
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    _exit(134);
}
static void __attribute__((noinline)) crash_here(int argc) { lib_run(argc); }  /* CRASH_HERE */
int main(int argc, char **argv) { (void)argv; signal(SIGABRT, on_abort); crash_here(argc); return 0; }  /* MAIN */
"""
ASAN_PROG = """\
#include <stdlib.h>
static int __attribute__((noinline)) overflow(int *p, int n) { return p[n]; }  /* OVERFLOW */
int main(int argc, char **argv) {
    (void)argv;
    int *p = malloc(4 * sizeof(int));
    int r = overflow(p, argc + 3);  /* ASAN_MAIN */
    free(p);
    return r;
}
"""
# Inlining at -O2: static helpers, a loop over a table, a struct passed by value.
INLINE_C = """\
#include <stdio.h>
#include <string.h>
struct acc { long sum; int n; };
static inline int sq(int x) { return x * x; }
static inline int cube(int x) { return sq(x) * x; }
static inline struct acc add(struct acc a, int v) { a.sum += cube(v) - sq(v); a.n++; return a; }
static int classify(int v) { switch (v % 5) { case 0: return sq(v); case 1: return cube(v); case 2: return -v;
                             case 3: return v / 3; default: return v ^ 0x55; } }
long fold(const int *v, int n) { struct acc a = {0, 0}; for (int i = 0; i < n; i++) a = add(a, classify(v[i]));
                                 return a.sum / (a.n ? a.n : 1); }
static int parse(const char *s) { int r = 0; while (*s >= '0' && *s <= '9') r = r * 10 + (*s++ - '0'); return r; }
int main(int argc, char **argv) {
    int v[64];
    for (int i = 0; i < 64; i++) v[i] = i < argc ? parse(argv[i]) + (int)strlen(argv[i]) : i * 7;
    printf("%ld\\n", fold(v, 64));
    return 0;
}
"""
# A C++ library with the standard library's templates inlined into it.
CXX_LIB = """\
#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>
namespace geo {
struct Shape { virtual ~Shape() = default; virtual double area() const = 0; virtual std::string name() const = 0; };
struct Rect : Shape { double w, h; Rect(double a, double b) : w(a), h(b) {}
    double area() const override { return w * h; } std::string name() const override { return "rect"; } };
struct Circle : Shape { double r; explicit Circle(double a) : r(a) {}
    double area() const override { return 3.14159 * r * r; } std::string name() const override { return "circle"; } };
template <class T> T total(const std::vector<T> &v) { return std::accumulate(v.begin(), v.end(), T{}); }
std::vector<std::unique_ptr<Shape>> make(int n) {
    std::vector<std::unique_ptr<Shape>> out;
    for (int i = 0; i < n; ++i) {
        if (i % 2) out.push_back(std::make_unique<Rect>(i, i + 1)); else out.push_back(std::make_unique<Circle>(i));
    }
    return out;
}
std::map<std::string, double> by_name(const std::vector<std::unique_ptr<Shape>> &shapes) {
    std::map<std::string, double> m;
    for (const auto &s : shapes) m[s->name()] += s->area();
    return m;
}
std::string report(int n) {
    auto shapes = make(n);
    std::sort(shapes.begin(), shapes.end(), [](const auto &a, const auto &b) { return a->area() < b->area(); });
    std::vector<double> areas;
    std::transform(shapes.begin(), shapes.end(), std::back_inserter(areas), [](const auto &s) { return s->area(); });
    std::ostringstream os;
    for (const auto &[k, v] : by_name(shapes)) os << k << '=' << v << ';';
    os << "total=" << total(areas);
    return os.str();
}
}  // namespace geo
"""


def marker_line(source: str, marker: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if marker in line)


def build(out: Path, source: str, *flags: str, cxx: bool = False) -> Path:
    """Compile `source` with -g and a build-id into `out`; the source stays in a `src/` beside it."""
    src_dir = out.parent.parent / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    src = src_dir / (out.name.replace(".", "_") + (".cpp" if cxx else ".c"))
    src.write_text(source)
    subprocess.run(["g++" if cxx else "gcc", "-g", "-Wl,--build-id=sha1", "-o", str(out), str(src), *flags],
                   check=True)
    return out


def code_addresses(binary: Path, count: int, seed: int) -> list[int]:
    """Every function start (.symtab) and `count` random addresses in .text."""
    with open(binary, "rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        lo, size = text["sh_addr"], text["sh_size"]
        symtab = elf.get_section_by_name(".symtab")
        starts = sorted({s["st_value"] for s in symtab.iter_symbols()
                         if s["st_info"]["type"] == "STT_FUNC" and s["st_value"] and s["st_shndx"] != "SHN_UNDEF"})
    rng = random.Random(seed)
    return starts + [lo + rng.randrange(size) for _ in range(count)]


Answer = list[tuple[str, str]]  # (function, file:line) innermost first


def eu_addr2line(binary: Path, addresses: list[int]) -> list[Answer]:
    """eu-addr2line -a -f -i -C, addresses on stdin; each answer's blocks split at the -a lines."""
    proc = subprocess.run(["eu-addr2line", "-a", "-f", "-i", "-C", "-e", str(binary)],
                          input="".join(f"{a:#x}\n" for a in addresses), capture_output=True, text=True)
    answers: list[Answer] = []
    lines = proc.stdout.splitlines()
    i = 0
    while i < len(lines):
        assert re.fullmatch(r"0x[0-9a-f]+", lines[i]), lines[i]
        i += 1
        frames: Answer = []
        while i < len(lines) and not re.fullmatch(r"0x[0-9a-f]+", lines[i]):
            name = re.sub(r" inlined at .*$", "", lines[i])
            frames.append((name, _file_line(lines[i + 1])))
            i += 2
        answers.append(frames)
    assert len(answers) == len(addresses)
    return answers


def _file_line(location: str) -> str:
    m = re.fullmatch(r"(.*?):(\d+)(?::\d+)?", location)
    return f"{m[1]}:{m[2]}" if m else location


def ours(build_id: str, addresses: list[int], options: Options) -> tuple[list[Answer], list[Answer]]:
    """Our answers, and the same with the outer (inlined-into) frames taken where the answering line
    row starts: eu-addr2line -i builds its inline chain at the address dwfl_lineinfo hands back, not
    at the one asked (its first name comes from the address asked)."""
    sym = Symbolizer(options, warn=lambda m: None)
    index = sym.resolver.module(build_id, None).index
    assert index is not None

    def frames(a: int) -> Answer:
        answer = sym.answer(Request(a, a, "vaddr", build_id=build_id))
        return [(f.function or "??", f"{f.file}:{f.line}" if f.file else "??:0") for f in answer.frames] \
            or [("??", "??:0")]

    mine, at_row = [], []
    for a in addresses:
        own = frames(a)
        row = index.row_address(a)
        mine.append(own)
        at_row.append(own[:1] + (frames(row)[1:] if row is not None else []))
    return mine, at_row


def disagreements(addresses: list[int], theirs: list[Answer], mine: list[Answer]) -> list[str]:
    return [f"{a:#x}: eu-addr2line {t} / splitdebug {m}" for a, t, m in zip(addresses, theirs, mine, strict=True)
            if t != m]
