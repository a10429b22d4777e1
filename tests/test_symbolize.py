"""`splitdebug symbolize` against the real tools: eu-addr2line's answers on the unstripped binaries,
crashing programs run stripped from trees split by `splitdebug split`, debuginfod serving a tree,
the fallbacks to minidebuginfo and .dynsym, every input format, bad input and the index cache."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import env_with_package, have, run_cli
from splitdebug.elf.read import read_elf
from splitdebug.symbolize import Options, Symbolizer, symbolize_lines
from splitdebug.symbolize import build as build_module
from symbolize_helpers import (ASAN_PROG, CRASH_LIB, CRASH_PROG, CXX_LIB, INLINE_C, build, code_addresses,
                               disagreements, eu_addr2line, marker_line, ours)

pytestmark = pytest.mark.skipif(not have("eu-addr2line"), reason="needs elfutils")

RANDOM_ADDRESSES = 2000


def split(root: Path, policy: str, *extra: str) -> None:
    proc = run_cli("split", "--policy", policy, "-q", *extra, root)
    assert proc.returncode == 0, proc.stderr


def install(built: Path, root: Path, image_dir: str) -> Path:
    dest = root / image_dir.lstrip("/") / built.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, dest)
    return dest


# -- agreement with eu-addr2line ---------------------------------------------------------------


@dataclass(frozen=True)
class Compared:
    root: Path  # the split tree
    unstripped: dict[str, Path]  # name -> unstripped binary


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Compared:
    """An -O2 C program with inlining and two C++ libraries over the standard library's templates,
    split with the Debian policy: compressed debug sections and a dwz multifile for the two libraries."""
    work = tmp_path_factory.mktemp("compare")
    root = work / "root"
    built = {
        "inline_c": build(work / "build/inl", INLINE_C, "-O2"),
        "cxx_lib": build(work / "build/libgeo.so.1", CXX_LIB, "-O2", "-shared", "-fPIC", cxx=True),
        "cxx_lib_twin": build(work / "build/libgeo2.so.1", CXX_LIB + "int geo_twin = 2;\n", "-O2", "-shared", "-fPIC",
                              cxx=True),
    }
    for name, path in built.items():
        install(path, root, "/usr/bin" if name == "inline_c" else "/usr/lib")
    split(root, "debian", "--package", "geo")
    return Compared(root, built)


def check_agreement(name: str, unstripped: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The innermost frame (function, file:line) agrees on >= 99.5 % of the addresses; where the
    inline chains differ, every difference is eu-addr2line taking its chain at the line row's start."""
    build_id = read_elf(unstripped).build_id
    assert build_id
    addresses = code_addresses(unstripped, RANDOM_ADDRESSES, seed=18)
    theirs = eu_addr2line(unstripped, addresses)
    mine, at_row = ours(build_id, addresses, Options(roots=(root,), cache_dir=None))
    inner = [f"{a:#x}: eu-addr2line {t[0]} / splitdebug {m[0]}"
             for a, t, m in zip(addresses, theirs, mine, strict=True) if t[0] != m[0]]
    chains = disagreements(addresses, theirs, mine)
    unexplained = disagreements(addresses, theirs, at_row)
    n = len(addresses)
    with capsys.disabled():  # the figures and every disagreement, in the test output
        print(f"\n{name}: {n} addresses, innermost frame agrees on {100 * (n - len(inner)) / n:.2f} %, "
              f"whole inline chain on {100 * (n - len(chains)) / n:.2f} % "
              f"({len(chains) - len(unexplained)} chains differ only by eu-addr2line's row-start address)")
        for line in chains:
            print(f"  disagreement {line}")
    assert (n - len(inner)) / n >= 0.995, "\n".join(inner)
    assert unexplained == [], "\n".join(unexplained)


@pytest.mark.parametrize("name", ["inline_c", "cxx_lib"])
def test_agrees_with_eu_addr2line(compared: Compared, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    check_agreement(name, compared.unstripped[name], compared.root, capsys)


def test_the_comparison_goes_through_a_dwz_multifile(compared: Compared) -> None:
    debug = compared.root / "usr/lib/debug"
    altlinked = [p for p in debug.rglob("*.debug") if read_elf(p).section(".gnu_debugaltlink")]
    assert altlinked, "dwz made no multifile: the test would not follow .gnu_debugaltlink"
    assert any(read_elf(p).section(".debug_info").flags & 0x800 for p in debug.rglob("*.debug"))  # SHF_COMPRESSED


@pytest.mark.parametrize("binary", ["hello/hello", "greet/libgreet.so.1.0.0", "shapes/libshapes.so.2.1.0",
                                    "shapes_user/shapes_user"])
def test_agrees_on_the_examples(main_job: Path, binary: str, capsys: pytest.CaptureFixture[str]) -> None:
    check_agreement(binary, main_job / "build/obj/debian" / binary, main_job / "build/stage/debian", capsys)


# -- a crashing program, run stripped ----------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    work: Path
    build: Path  # unstripped binaries
    sources: Path


def run_crash(root: Path) -> str:
    """The stripped program's stderr: its backtrace_symbols_fd lines."""
    proc = subprocess.run([str(root / "usr/bin/crashy")], capture_output=True, text=True,
                          env={"LD_LIBRARY_PATH": str(root / "usr/lib"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 134, proc.stderr
    assert "crashy(+0x" in proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    work = tmp_path_factory.mktemp("crash")
    lib = build(work / "build/libcrash.so.1", CRASH_LIB, "-O1", "-shared", "-fPIC", "-Wl,-soname,libcrash.so.1")
    build(work / "build/crashy", CRASH_PROG, "-O1", str(lib))
    return Crash(work, work / "build", work / "src")


def crash_tree(crash: Crash, name: str, policy: str, *extra: str) -> Path:
    root = crash.work / name
    if not root.exists():
        install(crash.build / "crashy", root, "/usr/bin")
        install(crash.build / "libcrash.so.1", root, "/usr/lib")
        split(root, policy, *extra)
    return root


def expected_frames(crash: Crash) -> list[str]:
    """`function at file:line` for the frames of ours in the crash, as the sources say."""
    prog, lib = crash.sources / "crashy.c", crash.sources / "libcrash_so_1.c"
    return [f"on_abort at {prog}:{marker_line(CRASH_PROG, 'ON_ABORT')}:",
            f"lib_fail at {lib}:{marker_line(CRASH_LIB, 'LIB_FAIL')}:",
            f"lib_run at {lib}:{marker_line(CRASH_LIB, 'LIB_RUN')}:",
            f"crash_here at {prog}:{marker_line(CRASH_PROG, 'CRASH_HERE')}:",
            f"main at {prog}:{marker_line(CRASH_PROG, 'MAIN')}:"]


def symbolize_cli(log: str, *args: str | os.PathLike[str], env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.sys.executable, "-m", "splitdebug", "symbolize", *map(str, args)], input=log,
                          capture_output=True, text=True, env=env or env_with_package())


def cache_env(tmp_path: Path) -> dict[str, str]:
    env = env_with_package()
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("DEBUGINFOD_URLS", None)
    return env


def test_crash_log_through_the_debian_tree(crash: Crash, tmp_path: Path) -> None:
    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    log = run_crash(root)
    proc = symbolize_cli(log, "--root", root, env=cache_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for frame in expected_frames(crash):
        assert re.search(rf"^    {re.escape(frame)}\d+ \[dwarf\]$", proc.stdout, re.M), (frame, proc.stdout)
    # A filter: every line of the log is there, unchanged and in order.
    assert [line for line in proc.stdout.splitlines() if not line.startswith("    ")] == log.splitlines()
    assert "Traceback" not in proc.stderr


def test_crash_log_as_json(crash: Crash, tmp_path: Path) -> None:
    import json

    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    proc = symbolize_cli(run_crash(root), "--root", root, "--format", "json", env=cache_env(tmp_path))
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    crash_here = [o for o in objects if o["function"] == "crash_here"]
    assert crash_here and crash_here[0]["source"] == "dwarf" and crash_here[0]["version"] == 1
    assert crash_here[0]["line"] == marker_line(CRASH_PROG, "CRASH_HERE")
    assert crash_here[0]["file"].endswith("crashy.c") and crash_here[0]["inlined"] is False
    assert {o["source"] for o in objects} <= {"dwarf", "minidebuginfo", "dynsym", "none"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not have("debuginfod"), reason="needs debuginfod")
def test_crash_log_through_debuginfod(crash: Crash, tmp_path: Path) -> None:
    served = crash_tree(crash, "debian", "debian", "--package", "crash")
    bare = tmp_path / "bare"  # the binaries only: the debug files must come from the server
    shutil.copytree(served, bare, symlinks=True)
    shutil.rmtree(bare / "usr/lib/debug")
    port = free_port()
    server = subprocess.Popen(["debuginfod", "-F", str(served), "-p", str(port), "-d", str(tmp_path / "db.sqlite"),
                               "-t", "0", "-g", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        build_id = read_elf(bare / "usr/bin/crashy").build_id
        deadline = time.monotonic() + 90
        while True:  # debuginfod answers once it has indexed the tree
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/buildid/{build_id}/debuginfo", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("debuginfod did not serve the tree within 90 s")
                time.sleep(0.5)
        env = cache_env(tmp_path)
        env["DEBUGINFOD_URLS"] = f"http://127.0.0.1:{port}"
        proc = symbolize_cli(run_crash(bare), "--root", bare, env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    for frame in expected_frames(crash):
        assert re.search(rf"^    {re.escape(frame)}\d+ \[dwarf\]$", proc.stdout, re.M), (frame, proc.stdout)
    assert (tmp_path / "cache/splitdebug/debuginfod" / str(build_id) / "debuginfo").is_file()


def test_without_the_debug_tree_minidebuginfo_answers(crash: Crash, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(crash_tree(crash, "redhat", "redhat", "--package", "crash", "--version", "1", "--release", "1"),
                    root, symlinks=True)
    shutil.rmtree(root / "usr/lib/debug")
    proc = symbolize_cli(run_crash(root), "--root", root, env=cache_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # static functions are only in the minidebuginfo; exported ones come from .dynsym
    assert re.search(r"^    crash_here at \?\?:0 \[minidebuginfo\]$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^    lib_fail at \?\?:0 \[minidebuginfo\]$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^    lib_run at \?\?:0 \[dynsym\]$", proc.stdout, re.M), proc.stdout


def test_without_the_debug_tree_dynsym_answers(crash: Crash, tmp_path: Path) -> None:
    root = crash.work / "debian-nodebug"
    shutil.copytree(crash_tree(crash, "debian", "debian", "--package", "crash"), root, symlinks=True)
    shutil.rmtree(root / "usr/lib/debug")
    proc = symbolize_cli(run_crash(root), "--root", root, env=cache_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^    lib_run at \?\?:0 \[dynsym\]$", proc.stdout, re.M), proc.stdout
    # the program exports nothing: nothing answers, and the frame says why
    assert re.search(r"^    \?\? \[none: no \.build-id/../\w+\.debug in the debug directories", proc.stdout,
                     re.M), proc.stdout


@pytest.mark.skipif(subprocess.run(["gcc", "-fsanitize=address", "-x", "c", "-o", "/dev/null", "-"],
                                   input="int main(void){return 0;}", text=True, capture_output=True).returncode != 0,
                    reason="no libasan")
def test_asan_report(tmp_path: Path) -> None:
    built = build(tmp_path / "build/asan", ASAN_PROG, "-O1", "-fsanitize=address", "-fno-omit-frame-pointer")
    root = tmp_path / "root"
    install(built, root, "/usr/bin")
    split(root, "debian")
    proc = subprocess.run([str(root / "usr/bin/asan")], capture_output=True, text=True,
                          env={"ASAN_OPTIONS": "symbolize=0:detect_leaks=0", "PATH": "/usr/bin:/bin"})
    assert "heap-buffer-overflow" in proc.stderr
    # gcc 12's libasan prints no BuildId (newer ones do: test_every_input_format has that shape)
    assert re.search(r"#0 0x[0-9a-f]+ +\(\S+/usr/bin/asan\+0x[0-9a-f]+\)", proc.stderr), proc.stderr
    out = symbolize_cli(proc.stderr, "--root", root, env=cache_env(tmp_path))
    assert out.returncode == 0 and "Traceback" not in out.stderr
    src = tmp_path / "src/asan.c"
    assert re.search(rf"^    overflow at {re.escape(str(src))}:{marker_line(ASAN_PROG, 'OVERFLOW')}:\d+ \[dwarf\]$",
                     out.stdout, re.M), out.stdout
    assert re.search(rf"^    main at {re.escape(str(src))}:{marker_line(ASAN_PROG, 'ASAN_MAIN')}:\d+ \[dwarf\]$",
                     out.stdout, re.M), out.stdout


# -- every input format, through the library ---------------------------------------------------


def function_vaddr(binary: Path, name: str) -> int:
    with open(binary, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        return int(sym["st_value"]) + 4  # inside it, past the first instruction


def test_every_input_format(crash: Crash) -> None:
    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    prog = crash.build / "crashy"
    bid = read_elf(prog).build_id
    vaddr = function_vaddr(prog, "crash_here")
    base = 0x7F0000000000
    log = [
        f"{bid}+{vaddr:#x}",
        f"BUILDID:{bid} {vaddr:#x}",
        f"/usr/bin/crashy {vaddr:#x}",
        f"#4 {base + vaddr:#x} in crash_here (/usr/bin/crashy+{vaddr:#x}) (BuildId: {bid})",
        f"Module crashy with build-id {bid}",
        f"#1  {base + vaddr:#016x} n/a (crashy + {vaddr:#x})",  # an outer frame: a return address
        "{{{reset}}}",
        f"{{{{{{module:0:crashy:elf:{bid}}}}}}}",
        f"{{{{{{mmap:{base:#x}:0x4000:load:0:rx:0x0}}}}}}",
        f"{{{{{{bt:0:{base + vaddr:#x}:pc}}}}}}",
        "{{{bt:1:0x10:ra}}}",
    ]
    warnings: list[str] = []
    out = list(symbolize_lines(log, Options(roots=(root,), cache_dir=None), warn=warnings.append))
    answers = [line for line in out if line.startswith("    ")]
    line = marker_line(CRASH_PROG, "CRASH_HERE")
    assert len([a for a in answers if re.match(rf"    crash_here at \S+crashy\.c:{line}:\d+ \[dwarf\]$", a)]) == 6, out
    assert answers[-1] == "    ?? [none: no markup mmap covers this address]"
    assert [o for o in out if not o.startswith("    ")] == log
    assert warnings == []


def test_glibc_symbol_plus_offset_and_return_addresses(crash: Crash) -> None:
    """`prog(main+0x1a)` is looked up by the symbol; glibc's addresses are return addresses (PC - 1)."""
    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    lib = crash.build / "libcrash.so.1"
    start = function_vaddr(lib, "lib_run") - 4
    sym = Symbolizer(Options(roots=(root,), cache_dir=None), warn=lambda m: None)
    # lib_fail ends in a call to abort(), which does not return: the return address is lib_run's first byte
    out = list(sym.lines(["/usr/lib/libcrash.so.1(lib_run+0x0)[0x7f0000001000]",
                          f"/usr/lib/libcrash.so.1(+{start:#x})[0x7f0000001000]"]))
    assert out[1].startswith("    lib_fail at ") and out[3].startswith("    lib_fail at "), out


# -- bad input ---------------------------------------------------------------------------------


def test_garbage_is_echoed_and_unknown_build_ids_say_why(tmp_path: Path) -> None:
    log = ("hello\n\x00\x01 binary\n{{{bt:zz}}}\n(+0x)[0x]\n#0 0x12 in f (+0x)\n"
           "deadbeefdeadbeef+0x10\nBUILDID:0123456789abcdef 0x20\n/nonexistent/lib.so(+0x10)[0x7f00]\n")
    proc = symbolize_cli(log, "--root", tmp_path, env=cache_env(tmp_path))
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    echoed = [line for line in lines if not line.startswith("    ")]
    assert echoed == log.splitlines()
    answers = [line for line in lines if line.startswith("    ")]
    assert answers == [
        "    ?? [none: no binary for deadbeefdeadbeef; no .build-id/de/adbeefdeadbeef.debug in the debug directories]",
        "    ?? [none: no binary for 0123456789abcdef; no .build-id/01/23456789abcdef.debug in the debug directories]",
        "    ?? [none: no binary for /nonexistent/lib.so; no build-id]",
    ]


def corrupt_section(path: Path, name: str) -> None:
    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        offset, size = sec["sh_offset"], sec["sh_size"]
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * size)


def tree_with_corrupt_library(crash: Crash, tmp_path: Path) -> Path:
    """A copy of the crash program's debian tree whose library's debug file has garbage DWARF."""
    root = tmp_path / "root"
    shutil.copytree(crash_tree(crash, "debian", "debian", "--package", "crash"), root, symlinks=True)
    debug = root / "usr/lib/debug/.build-id"
    lib_id = read_elf(root / "usr/lib/libcrash.so.1").build_id
    assert lib_id
    corrupt_section(debug / lib_id[:2] / f"{lib_id[2:]}.debug", ".debug_info")
    return root


def test_a_corrupt_debug_file_is_one_warning_and_the_frame_degrades(crash: Crash, tmp_path: Path) -> None:
    root = tree_with_corrupt_library(crash, tmp_path)
    proc = symbolize_cli(run_crash(root), "--root", root, env=cache_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 1, warnings
    lib_id = read_elf(root / "usr/lib/libcrash.so.1").build_id
    assert lib_id
    debug = root / "usr/lib/debug/.build-id" / lib_id[:2] / lib_id[2:]
    assert warnings[0].startswith(f"splitdebug: warning: {debug}.debug: unreadable debug")
    assert warnings[0].endswith("trying the next source")
    assert re.search(r"^    lib_run at \?\?:0 \[dynsym\]$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^    crash_here at \S+:\d+:\d+ \[dwarf\]$", proc.stdout, re.M), proc.stdout


def test_an_unreadable_input_file_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("symbolize", tmp_path / "missing.log")
    assert proc.returncode == 2
    assert proc.stderr == f"splitdebug: error: {tmp_path / 'missing.log'}: cannot read: No such file or directory\n"


# -- the index cache ---------------------------------------------------------------------------


def test_a_second_run_reads_the_cache_not_dwarf(crash: Crash, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    prog = crash.build / "crashy"
    line = f"BUILDID:{read_elf(prog).build_id} {function_vaddr(prog, 'crash_here'):#x}"
    options = Options(roots=(root,), cache_dir=tmp_path / "cache")
    first = list(symbolize_lines([line], options))
    entries = list((tmp_path / "cache/symbolize").rglob("*.dwarf.pickle"))
    assert len(entries) == 1

    def no_dwarf(*args: object, **kwargs: object) -> None:
        raise AssertionError("DWARF parsed again")

    monkeypatch.setattr(build_module, "build_index", no_dwarf)
    assert list(symbolize_lines([line], options)) == first
    monkeypatch.undo()
    entries[0].write_bytes(b"not a pickle")  # a damaged entry is rebuilt, silently
    assert list(symbolize_lines([line], options, warn=lambda m: pytest.fail(m))) == first
    assert entries[0].read_bytes() != b"not a pickle"


# -- the path-based layout, .gnu_debuglink and explicit debug directories -----------------------


def redhat_without_build_id_links(crash: Crash, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(crash_tree(crash, "redhat", "redhat", "--package", "crash", "--version", "1", "--release", "1"),
                    root, symlinks=True)
    shutil.rmtree(root / "usr/lib/debug/.build-id")  # only the path-based files are left
    return root


@pytest.mark.parametrize("how", [["--policy", "redhat", "--package", "crash", "--version", "1", "--release", "1"],
                                 []])
def test_path_based_debug_files(crash: Crash, tmp_path: Path, how: list[str]) -> None:
    """By the policy's layout, or (without the package fields) by the binary's .gnu_debuglink."""
    root = redhat_without_build_id_links(crash, tmp_path)
    assert list((root / "usr/lib/debug/usr/bin").glob("crashy-1-1.*.debug"))
    proc = symbolize_cli(run_crash(root), "--root", root, *how, env=cache_env(tmp_path))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for frame in expected_frames(crash):
        assert re.search(rf"^    {re.escape(frame)}\d+ \[dwarf\]$", proc.stdout, re.M), (frame, proc.stdout)


def test_a_debuglink_whose_crc_does_not_match_is_not_used(crash: Crash, tmp_path: Path) -> None:
    root = redhat_without_build_id_links(crash, tmp_path)
    debug = next((root / "usr/lib/debug/usr/bin").glob("crashy-1-1.*.debug"))
    debug.chmod(0o644)
    with open(debug, "ab") as f:
        f.write(b"\0")  # still a readable ELF, but not the file the binary was linked to
    proc = symbolize_cli(run_crash(root), "--root", root, env=cache_env(tmp_path))
    assert proc.stderr.splitlines() == [
        f"splitdebug: warning: {debug}: CRC does not match {root}/usr/bin/crashy's .gnu_debuglink: not used"]
    assert re.search(r"^    crash_here at \?\?:0 \[minidebuginfo\]$", proc.stdout, re.M), proc.stdout


def test_debug_file_directory(crash: Crash, tmp_path: Path) -> None:
    """gdb's debug-file-directory: the debug files apart from the binaries."""
    root = tmp_path / "root"
    shutil.copytree(crash_tree(crash, "debian", "debian", "--package", "crash"), root, symlinks=True)
    debug = tmp_path / "debug"
    shutil.move(root / "usr/lib/debug", debug)
    proc = symbolize_cli(run_crash(root), "--root", root, "--debug-file-directory", debug, env=cache_env(tmp_path))
    for frame in expected_frames(crash):
        assert re.search(rf"^    {re.escape(frame)}\d+ \[dwarf\]$", proc.stdout, re.M), (frame, proc.stdout)


def test_coredump_offsets_of_a_non_pie_executable(tmp_path: Path) -> None:
    """systemd-coredump's `+ 0x…` counts from the module's first mapped page: 0x400000 for ET_EXEC."""
    built = build(tmp_path / "build/nopie", CRASH_LIB + "int main(void) { lib_run(1); return 0; }\n",
                  "-O1", "-no-pie", "-fno-pie")
    root = tmp_path / "root"
    install(built, root, "/usr/bin")
    split(root, "debian")
    vaddr = function_vaddr(built, "lib_run")
    assert vaddr > 0x400000
    bid = read_elf(built).build_id
    log = [f"Module nopie with build-id {bid}", f"#0  0x0000000000{vaddr:x} n/a (nopie + {vaddr - 0x400000:#x})"]
    out = list(symbolize_lines(log, Options(roots=(root,), cache_dir=None)))
    assert re.match(rf"    lib_run at \S+nopie\.c:{marker_line(CRASH_LIB, 'LIB_RUN')}:\d+ \[dwarf\]$", out[2]), out


@pytest.mark.parametrize("name", ["inline_c", "cxx_lib"])
def test_the_die_reader_answers_as_pyelftools(compared: Compared, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """dies.py and lines.py (bytes) and the pyelftools walk they replace (kept for split DWARF's forms)
    index alike: the same functions, inline chains and lines at every scope boundary."""
    path = str(compared.unstripped[name])
    fast = build_module.build_index(path)
    def unsupported(*args: object) -> None:
        raise build_module.Unsupported("as for split DWARF")

    monkeypatch.setattr(build_module, "open_reader", unsupported)
    slow = build_module.build_index(path)
    assert fast.filler is not None and slow.filler is None  # units filled when asked / all at once
    fast.fill_all()
    points = {a for index in (fast, slow) for starts in index.scope_starts for a in starts}
    points |= {p + 1 for p in points}
    assert len(points) > 40 and len(fast.chains) > 5  # functions, and calls inlined into them
    assert [hex(a) for a in sorted(points) if fast.lookup(a) != slow.lookup(a)] == []


def test_markup_finds_each_module_by_its_mapping(crash: Crash) -> None:
    """Two modules mapped (out of order, the library below the program): an absolute PC goes to the
    module whose mapping holds it, and its vaddr is PC - mapping start + the mapping's vaddr."""
    root = crash_tree(crash, "debian", "debian", "--package", "crash")
    prog, lib = crash.build / "crashy", crash.build / "libcrash.so.1"
    prog_base, lib_base = 0x555555554000, 0x7F0000000000
    log = [f"{{{{{{module:0:crashy:elf:{read_elf(prog).build_id}}}}}}}",
           f"{{{{{{mmap:{prog_base + 0x1000:#x}:0x1000:load:0:r-x:0x1000}}}}}}",
           f"{{{{{{module:1:libcrash.so.1:elf:{read_elf(lib).build_id}}}}}}}",
           f"{{{{{{mmap:{lib_base:#x}:0x2000:load:1:r-x:0x0}}}}}}",
           f"{{{{{{bt:0:{lib_base + function_vaddr(lib, 'lib_run'):#x}:pc}}}}}}",
           f"{{{{{{bt:1:{prog_base + function_vaddr(prog, 'crash_here'):#x}:pc}}}}}}"]
    out = list(symbolize_lines(log, Options(roots=(root,), cache_dir=None)))
    answers = [line for line in out if line.startswith("    ")]
    assert re.match(r"    lib_run at \S+libcrash_so_1\.c:\d+:\d+ \[dwarf\]$", answers[0]), out
    assert re.match(r"    crash_here at \S+crashy\.c:\d+:\d+ \[dwarf\]$", answers[1]), out
