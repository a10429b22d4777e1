"""Helpers of the distribution tests (test_distro_*.py): a small C project built like a package,
package unpacking, tree listings and a debuginfod session that is always torn down."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

# Two programs and a library sharing a header: dwz has types in common to move to a multifile.
SOURCES = {
    "common.h": """\
#ifndef COMMON_H
#define COMMON_H
struct demo_record { int id; const char *name; double weight; struct demo_record *next; };
typedef struct demo_record demo_record;
static inline int record_score(const demo_record *r) { return r->id * 2 + (int)r->weight; }
#endif
""",
    "prog.c": """\
#include <stdio.h>
#include "common.h"
static int twice(int x) { return x * 2; }
int prog_entry(int v) { demo_record r = {v, "prog", 1.5, 0}; return twice(record_score(&r)); }
int main(int argc, char **argv) { (void)argv; printf("%d\\n", prog_entry(argc)); return 0; }
""",
    "tool.c": """\
#include <stdio.h>
#include "common.h"
int tool_entry(int v) { demo_record r = {v, "tool", 2.5, 0}; return record_score(&r) + 7; }
int main(int argc, char **argv) { (void)argv; printf("%d\\n", tool_entry(argc)); return 0; }
""",
    "lib.c": """\
#include "common.h"
int lib_entry(int v) { demo_record r = {v, "lib", 0.5, 0}; return record_score(&r) - 1; }
""",
}
NAME, VERSION, RELEASE, ARCH = "demo", "1.0", "1", "x86_64"
RPM_ARGS = ("--package", NAME, "--version", VERSION, "--release", RELEASE, "--arch", ARCH)


def write_sources(src: Path) -> Path:
    src.mkdir(parents=True, exist_ok=True)
    for name, text in SOURCES.items():
        (src / name).write_text(text)
    return src


def build_unstripped(src: Path, root: Path, libdir: str) -> dict[str, Path]:
    """Compile in `src` (relative names, as a package build does) and install into `root`:
    prog, tool, a hard link and a copy of prog (same build-id), libdemo.so.1.0 and its symlinks."""
    bindir = root / "usr/bin"
    lib = root / libdir.lstrip("/")
    bindir.mkdir(parents=True, exist_ok=True)
    lib.mkdir(parents=True, exist_ok=True)
    cc = ["gcc", "-g", "-O1", "-Wl,--build-id=sha1"]
    subprocess.run([*cc, "-o", str(bindir / "prog"), "prog.c"], cwd=src, check=True)
    subprocess.run([*cc, "-o", str(bindir / "tool"), "tool.c"], cwd=src, check=True)
    subprocess.run([*cc, "-shared", "-fPIC", "-Wl,-soname,libdemo.so.1", "-o", str(lib / "libdemo.so.1.0"),
                    "lib.c"], cwd=src, check=True)
    os.link(bindir / "prog", bindir / "prog-hardlink")
    shutil.copy2(bindir / "prog", bindir / "prog-copy")
    os.symlink("libdemo.so.1.0", lib / "libdemo.so.1")
    os.symlink("libdemo.so.1", lib / "libdemo.so")
    return {"prog": bindir / "prog", "tool": bindir / "tool", "lib": lib / "libdemo.so.1.0"}


def split(root: Path, policy: str, *extra: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    proc = run_cli("split", "--policy", policy, "--jobs", "2", *extra, root)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def package(root: Path, policy: str, out: Path, *extra: str) -> dict[str, Path]:
    """`splitdebug package`; returns {role: path}."""
    proc = run_cli("package", "--policy", policy, "--name", NAME, "--version", VERSION, "--release", RELEASE,
                   "--source-date-epoch", "1700000000", "--output", out, *extra, root)
    assert proc.returncode == 0, proc.stderr
    built = {}
    for line in proc.stdout.splitlines():
        role, _, path = line.partition(" ")
        built[role] = Path(path)
    return built


def listing(base: Path, sub: str = "") -> set[tuple[str, str]]:
    """{(image path, 'dir 755' | 'file 444' | 'link -> target')} of everything under base/sub."""
    top = base / sub.lstrip("/")
    out = set()
    if not top.exists():
        return out
    for p in [top, *top.rglob("*")]:
        image = "/" + p.relative_to(base).as_posix()
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out.add((image, f"link -> {os.readlink(p)}"))
        elif stat.S_ISDIR(st.st_mode):
            out.add((image, f"dir {stat.S_IMODE(st.st_mode):o}"))
        else:
            out.add((image, f"file {stat.S_IMODE(st.st_mode):o}"))
    return out


def rpm_listing(rpm: Path, prefix: str = "/") -> set[tuple[str, str]]:
    """The same listing, read from an rpm's header (`rpm -qp`)."""
    fmt = "[%{FILENAMES}\\t%{FILEMODES:perms}\\t%{FILELINKTOS}\\n]"
    out = subprocess.run(["rpm", "-qp", "--qf", fmt, str(rpm)], capture_output=True, text=True, check=True).stdout
    result = set()
    for line in out.splitlines():
        path, perms, target = line.split("\t")
        if not (path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")):
            continue
        mode = sum(1 << (8 - i) for i, c in enumerate(perms[1:]) if c != "-")
        kind = {"d": "dir", "l": "link", "-": "file"}[perms[0]]
        result.add((path, f"link -> {target}" if kind == "link" else f"{kind} {mode:o}"))
    return result


def extract_rpm(rpm: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    payload = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=payload, cwd=dest, check=True)
    return dest


def extract_deb(deb: Path, dest: Path) -> Path:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    return dest


def section_names(path: Path) -> set[str]:
    out = subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True).stdout
    return {line.split("]", 1)[1].split()[0] for line in out.splitlines()
            if line.strip().startswith("[") and "]" in line and line.split("]", 1)[1].split()}


def altlink(path: Path) -> str | None:
    """The file name in .gnu_debugaltlink (dwz's pointer to its multifile), or None."""
    from splitdebug.elf import read as elfread
    sec = elfread.read_elf(path).section(".gnu_debugaltlink")
    if sec is None:
        return None
    with open(path, "rb") as f:
        f.seek(sec.offset)
        return f.read(sec.size).split(b"\0", 1)[0].decode()


def mini_symbols(binary: Path, work: Path) -> set[str]:
    """Function names in the minidebuginfo (.gnu_debugdata: an xz-compressed ELF's .symtab)."""
    import lzma
    xz, elf = work / f"{binary.name}.gnu_debugdata.xz", work / f"{binary.name}.mini.elf"
    subprocess.run(["objcopy", f"--dump-section=.gnu_debugdata={xz}", str(binary), str(work / "scratch")],
                   check=True)
    elf.write_bytes(lzma.decompress(xz.read_bytes()))
    return nm_functions(elf)


def nm_functions(path: Path, dynamic: bool = False) -> set[str]:
    out = subprocess.run(["nm", *(["-D"] if dynamic else []), "--defined-only", "--format=posix", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] in "Tt"}


def gdb(binary: Path, debug_dir: Path, *commands: str) -> str:
    argv = ["gdb", "-nx", "-batch", "-ex", f"set debug-file-directory {debug_dir}",
            "-ex", "set debuginfod enabled off", "-ex", f"file {binary}"]
    for c in commands:
        argv += ["-ex", c]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


# Run inside the network namespace (when allowed) so the server is reachable on loopback only:
# debuginfod 0.188 has no option to bind an address. The server is killed whatever happens.
_DEBUGINFOD_SESSION = r"""
import ctypes, json, os, signal, subprocess, sys, time, urllib.request
args = json.loads(sys.argv[1])
def die_with_parent():  # PR_SET_PDEATHSIG: the server goes when this script goes, even on SIGKILL
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
if args["netns"]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
port = args["port"]
server = subprocess.Popen(["debuginfod", "-R", args["rpm_dir"], "-p", str(port), "-d", args["db"], "-t", "0",
                           "-g", "0"], stdout=subprocess.DEVNULL, stderr=open(args["log"], "w"),
                          preexec_fn=die_with_parent)
result = {}
try:
    deadline = time.monotonic() + 30
    want = 'scanned_files_total{source=".rpm archive"} %d' % args["rpms"]
    while time.monotonic() < deadline:
        try:
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            if want in metrics:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        result["error"] = "debuginfod did not finish scanning within 30 s"
    env = dict(os.environ, DEBUGINFOD_URLS=f"http://127.0.0.1:{port}", DEBUGINFOD_CACHE_PATH=args["cache"],
               DEBUGINFOD_TIMEOUT="10")
    for name, query in args["queries"].items():
        proc = subprocess.run(["debuginfod-find", *query], capture_output=True, text=True, env=env, timeout=60)
        result[name] = {"rc": proc.returncode, "path": proc.stdout.strip(), "stderr": proc.stderr.strip()}
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
print(json.dumps(result))
"""


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def debuginfod_session(rpm_dir: Path, work: Path, queries: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Serve `rpm_dir` with debuginfod and run `debuginfod-find` for each query; always torn down."""
    netns = _netns_available()
    args = {"netns": netns, "port": 8002 if netns else free_port(), "rpm_dir": str(rpm_dir),
            "db": str(work / "debuginfod.sqlite"), "log": str(work / "debuginfod.log"),
            "cache": str(work / "cache"), "rpms": len(list(rpm_dir.rglob("*.rpm"))), "queries": queries}
    argv = [sys.executable, "-c", _DEBUGINFOD_SESSION, json.dumps(args)]
    if netns:
        argv = ["unshare", "-n", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, dict[str, str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
