"""Issue 13: real ELF files of the kinds other toolchains make, each split and judged by the real tools.

Each test here failed before its fix: a static executable's links to the removed .symtab, an allocated
.debug_gdb_scripts (Rust), an input that already has a .gnu_debuglink, armhf attribute sections.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import env_with_package, gdb_info_line, readelf_sections, resolves, run_cli
from splitdebug.elf import read as elfread

PKG = ("--package", "p", "--version", "1", "--release", "1", "--arch", "x86_64")
POLICIES = ("debian", "redhat", "yocto")
ENGINES = ("builtin", "tools")
STATIC = """
#include <stdio.h>
#include <string.h>
int static_entry(const char *s) { return (int)strlen(s) * 3; }
int main(int argc, char **argv) { printf("static %d\\n", static_entry(argv[argc - 1])); return 0; }
"""


def build(out: Path, source: str, *flags: str, cc: str = "gcc") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_name(out.name + ".c")
    src.write_text(source)
    subprocess.run([cc, "-g", "-O1", "-Wl,--build-id=sha1", *flags, "-o", str(out), str(src)], check=True)
    src.unlink()
    return out


def split_tree(root: Path, policy: str | Path, engine: str = "builtin",
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = env_with_package()
    if engine == "tools":
        env["SPLITDEBUG_ENGINE"] = "tools"
    env.update(extra_env or {})
    return run_cli("split", "--policy", policy, *PKG, "--jobs", "1", root, env=env)


def check_tree(root: Path, policy: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli("check", "--policy", policy, *PKG, root)


def in_tree(binary: Path, root: Path, image: str) -> Path:
    dest = root / image
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, dest)
    return dest


def debug_file_of(root: Path, binary: Path) -> Path:
    info = elfread.read_elf(binary)
    assert info.build_id is not None
    found = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and elfread.is_elf(p)
             and elfread.read_elf(p).is_debug_file and elfread.read_elf(p).build_id == info.build_id]
    assert len(found) == 1, found
    return found[0]


def elflint_messages(path: Path, *flags: str) -> set[str]:
    """eu-elflint's complaints, section numbers left out (ours and the tools' may number them otherwise)."""
    out = subprocess.run(["eu-elflint", "--gnu-ld", *flags, str(path)], capture_output=True, text=True).stdout
    return {re.sub(r"\[\s*\d+\]", "[]", line) for line in out.splitlines() if "No errors" not in line}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file's bytes (a hash) and every symlink's target in a tree."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def section_links(path: Path) -> dict[str, tuple[int, int, str | None]]:
    """{section name: (sh_link, sh_info, name of the section sh_link names)}."""
    h = elfread.read_headers(path)
    return {s.name: (s.link, s.info, h.sections[s.link].name if 0 < s.link < len(h.sections) else None)
            for s in h.sections[1:]}


# ------------------------------------------------------------------------------------------------
# 1. GNU ld -static: .rela.plt links the .symtab that --strip-all removes

@pytest.fixture(scope="module")
def static_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = build(tmp_path_factory.mktemp("static") / "prog", STATIC, "-static")
    links = section_links(exe)
    assert links[".rela.plt"][2] == ".symtab", links[".rela.plt"]  # the shape of the bug
    return exe


@pytest.fixture(scope="module")
def elfutils_g_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """redhat with eu-strip -g: the shipped binary keeps its .symtab (at a new index)."""
    text = (Path(__file__).resolve().parent.parent / "configs/redhat.yaml").read_text()
    text, n = re.subn(r"^(  (?:executable|shared_library):) \[.*\]$", r"\1 [-g]", text, flags=re.M)
    assert n == 2
    out = tmp_path_factory.mktemp("policy") / "redhat-g.yaml"
    out.write_text(text.replace("name: redhat", "name: redhat-g"))
    return out


def tools_reference(exe: Path, tmp: Path, keep_symtab: bool, add_section: bool = False) -> Path:
    """What objcopy (or eu-strip -g, keeping .symtab) ships for `exe`; `add_section`: then given a
    section by objcopy, as find-debuginfo -m adds .gnu_debugdata (objcopy moves the symbols at
    .init_array's start, __preinit_array_*, to .tbss, whose address they share)."""
    out = tmp / "reference"
    if keep_symtab:
        subprocess.run(["eu-strip", "-g", "-f", str(tmp / "ref.debug"), "-o", str(out), str(exe)], check=True)
        if add_section:
            (tmp / "ref.data").write_bytes(b"data")
            subprocess.run(["objcopy", f"--add-section=.gnu_debugdata={tmp / 'ref.data'}", str(out)], check=True)
    else:
        subprocess.run(["objcopy", "--strip-all", str(exe), str(out)], check=True)
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", [*POLICIES, "redhat-g"])
def test_static_executable_stays_readable(static_exe: Path, elfutils_g_policy: Path, policy: str, engine: str,
                                          tmp_path: Path) -> None:
    """gdb and objdump read the split static executable, it runs, eu-unstrip recombines it, and
    eu-elflint has nothing to say of it that it does not say of the tools' own output. With the
    tools, eu-strip would ship the .symtab that .rela.plt links (and put none in the debug file)."""
    pol: str | Path = elfutils_g_policy if policy == "redhat-g" else policy
    root = tmp_path / "root"
    binary = in_tree(static_exe, root, "usr/bin/prog")
    proc = split_tree(root, pol, engine)
    assert proc.returncode == 0 and "1 binaries split" in proc.stdout, proc.stdout + proc.stderr
    debug = debug_file_of(root, binary)
    # The ELF identity (EI_OSABI GNU, for the IFUNCs) survives: eu-elfcompress 0.188 zeroes it.
    assert debug.read_bytes()[:16] == static_exe.read_bytes()[:16]

    links = section_links(binary)
    if policy == "redhat-g":
        assert links[".rela.plt"][2] == ".symtab", links
    else:
        assert ".symtab" not in links and links[".rela.plt"][0] == 0, links  # objcopy writes 0
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set debug-file-directory /nonexistent",
                          "-ex", f"file {binary}"], capture_output=True, text=True)
    assert "not in executable format" not in gdb.stdout + gdb.stderr, gdb.stderr
    debug_dir = root / "usr/lib/debug" if policy != "yocto" else tmp_path / "none"  # yocto: beside it
    assert resolves(gdb_info_line(debug_dir, binary, "static_entry"), "prog")
    assert subprocess.run(["objdump", "-d", str(binary)], capture_output=True).returncode == 0
    run = subprocess.run([str(binary), "abcd"], capture_output=True, text=True)
    assert run.stdout == subprocess.run([str(static_exe), "abcd"], capture_output=True, text=True).stdout
    combined = tmp_path / "combined"
    unstrip = subprocess.run(["eu-unstrip", "-o", str(combined), str(binary), str(debug)],
                             capture_output=True, text=True)
    assert unstrip.returncode == 0, unstrip.stderr
    reference = tools_reference(static_exe, tmp_path, keep_symtab=policy == "redhat-g", add_section=engine == "tools")
    assert elflint_messages(binary) <= elflint_messages(reference)
    if policy == "redhat":  # the minidebuginfo ELF: its .rela.plt links its own .symtab
        data = elfread.section_bytes(binary, elfread.read_elf(binary), ".gnu_debugdata")
        assert data is not None
        mini = tmp_path / "mini.elf"
        mini.write_bytes(lzma.decompress(data))
        assert section_links(mini)[".rela.plt"][2] == ".symtab"
        assert not any("link value" in m for m in elflint_messages(mini, "-d"))


# ------------------------------------------------------------------------------------------------
# 2. An allocated .debug_gdb_scripts (rustc's) is part of the loaded image, not debug info

GDB_SCRIPTS = """
#include <stdio.h>
__attribute__((used, section(".debug_gdb_scripts"))) static const char scripts[] =
    "\\x01gdb_load_rust_pretty_printers.py";
int scripted_entry(int v) { return v * 5; }
int main(int argc, char **argv) { (void)argv; printf("scripted %d\\n", scripted_entry(argc)); return 0; }
"""
RUST = """
fn total(v: &[i32]) -> i32 { v.iter().sum() }
fn main() { let v = vec![1, 2, 3]; println!("rust {}", total(&v)); }
"""


@pytest.fixture(scope="module")
def gdb_scripts_exes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gdb-scripts")
    out = {"c": build(d / "c/prog", GDB_SCRIPTS)}
    rustc = shutil.which("rustc")
    if rustc is not None:
        (d / "rust").mkdir()
        (d / "rust/prog.rs").write_text(RUST)
        subprocess.run([rustc, "-g", "-C", "link-arg=-Wl,--build-id=sha1", "-o", str(d / "rust/prog"),
                        str(d / "rust/prog.rs")], check=True)
        out["rust"] = d / "rust/prog"
    for exe in out.values():
        scripts = elfread.read_elf(exe).section(".debug_gdb_scripts")
        assert scripts is not None and scripts.allocated
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", ["c", "rust"])
def test_allocated_debug_gdb_scripts_is_split_once(gdb_scripts_exes: dict[str, Path], kind: str, policy: str,
                                                   engine: str, tmp_path: Path) -> None:
    """A second split changes no byte (it used to split the split binary again, overwriting the debug
    file with one without DWARF), the debug file keeps its DWARF and `check` passes the tree."""
    if kind not in gdb_scripts_exes:
        pytest.skip("rustc is not installed (./bootstrap installs Debian's)")
    root = tmp_path / "root"
    binary = in_tree(gdb_scripts_exes[kind], root, "usr/bin/prog")
    first = split_tree(root, policy, engine)
    assert first.returncode == 0 and "1 binaries split" in first.stdout, first.stdout + first.stderr
    before = tree_digest(root)
    again = split_tree(root, policy, engine)
    assert again.returncode == 0 and "0 binaries split" in again.stdout, again.stdout + again.stderr
    assert tree_digest(root) == before
    assert not elfread.read_elf(binary).has_debug
    assert elfread.read_elf(binary).section(".debug_gdb_scripts") is not None  # it is loaded: it stays
    assert ".debug_info" in readelf_sections(debug_file_of(root, binary))
    check = check_tree(root, policy)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------------------------
# 3. An input that already carries a .gnu_debuglink: ours replaces it

@pytest.fixture(scope="module")
def linked_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("debuglinked")
    plain = build(d / "plain", STATIC.replace("static", "linked"))
    (d / "bogus.debug").write_bytes(b"not the debug file\n")
    out = d / "prog"
    subprocess.run(["objcopy", f"--add-gnu-debuglink={d / 'bogus.debug'}", str(plain), str(out)], check=True)
    assert elfread.read_debuglink(out, elfread.read_elf(out))[0] == "bogus.debug"  # type: ignore[index]
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", POLICIES)
def test_existing_debuglink_is_replaced(linked_exe: Path, policy: str, engine: str, tmp_path: Path) -> None:
    """The shipped binary has one .gnu_debuglink, naming our debug file with its CRC, and gdb finds
    the symbols through the tree (objcopy used to keep the input's link with a warning)."""
    root = tmp_path / "root"
    binary = in_tree(linked_exe, root, "usr/bin/prog")
    proc = split_tree(root, policy, engine)
    assert proc.returncode == 0 and "1 binaries split" in proc.stdout, proc.stdout + proc.stderr
    debug = debug_file_of(root, binary)
    assert readelf_sections(binary).count(".gnu_debuglink") == 1
    link = elfread.read_debuglink(binary, elfread.read_elf(binary))
    assert link == (debug.name, zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF)
    debug_dir = root / "usr/lib/debug" if policy != "yocto" else tmp_path / "none"  # yocto: beside it
    assert resolves(gdb_info_line(debug_dir, binary, "linked_entry"), "plain")
    check = check_tree(root, policy)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------------------------
# 4. armhf: .ARM.attributes is an ordinary non-allocated section, split in-process

ARM_AS, ARM_LD = "arm-linux-gnueabihf-as", "arm-linux-gnueabihf-ld"
ARM_OBJCOPY, ARM_OBJDUMP = "arm-linux-gnueabihf-objcopy", "arm-linux-gnueabihf-objdump"
# Built with the cross binutils only: Debian's gcc-arm-linux-gnueabihf cannot be installed beside
# gcc-multilib (the -m32 tests' compiler), and the assembler writes .ARM.attributes all the same.
ARM_START = """
\t.syntax unified
\t.arch armv7-a
\t.fpu vfpv3-d16
\t.eabi_attribute 28, 1
\t.text
\t.globl _start
\t.type _start, %function
_start:
\tmov r0, #0
\tmov r7, #1
\tsvc #0
\t.size _start, .-_start
"""


@pytest.fixture(scope="module")
def armhf_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # ./bootstrap installs binutils-arm-linux-gnueabihf; a machine without it cannot build the file at all.
    if shutil.which(ARM_AS) is None:
        pytest.skip(f"{ARM_AS} is not installed (./bootstrap installs binutils-arm-linux-gnueabihf)")
    d = tmp_path_factory.mktemp("armhf")
    (d / "start.s").write_text(ARM_START)
    subprocess.run([ARM_AS, "-g", str(d / "start.s"), "-o", str(d / "start.o")], check=True)
    exe = d / "prog"
    subprocess.run([ARM_LD, "--build-id=sha1", str(d / "start.o"), "-o", str(exe)], check=True)
    info = elfread.read_elf(exe)
    sec = info.section(".ARM.attributes")
    assert info.machine == "EM_ARM" and info.has_debug and info.kind == "executable"
    assert sec is not None and sec.type == "SHT_0x70000003" and not sec.allocated
    return exe


def arm_reference(exe: Path, tmp: Path, policy: str) -> tuple[Path, Path]:
    """(stripped binary, debug file) as the policy's own tool writes them for `exe`."""
    binary, debug = tmp / "ref", tmp / "ref.debug"
    if policy == "redhat":
        subprocess.run(["eu-strip", "--remove-comment", "-f", str(debug), "-o", str(binary), str(exe)], check=True)
    else:
        subprocess.run([ARM_OBJCOPY, "--only-keep-debug", str(exe), str(debug)], check=True)
        subprocess.run([ARM_OBJCOPY, "--strip-all", "--remove-section=.comment", "--remove-section=.note",
                        f"--add-gnu-debuglink={debug}", str(exe), str(binary)], check=True)
    return binary, debug


@pytest.mark.parametrize("policy", POLICIES)
def test_armhf_is_split_in_process(armhf_exe: Path, policy: str, tmp_path: Path) -> None:
    """The host's objcopy cannot read armhf: the split is in-process, with the attribute sections where
    the policy's tool puts them (objcopy keeps them in the binary, eu-strip moves them to the debug file)."""
    root = tmp_path / "root"
    binary = in_tree(armhf_exe, root, "usr/bin/prog")
    proc = split_tree(root, policy)
    assert proc.returncode == 0 and "1 binaries split" in proc.stdout and proc.stderr == "", proc.stdout + proc.stderr
    debug = debug_file_of(root, binary)
    info = elfread.read_elf(binary)
    assert not info.has_debug and not info.has_symtab
    assert ".debug_info" in readelf_sections(debug)
    ref_binary, ref_debug = arm_reference(armhf_exe, tmp_path, policy)
    ours = [n for n in readelf_sections(binary) if n != ".gnu_debugdata"]
    assert ours == readelf_sections(ref_binary)
    assert (".ARM.attributes" in ours) == (policy != "redhat")
    assert ".ARM.attributes" in readelf_sections(debug) and ".ARM.attributes" in readelf_sections(ref_debug)
    for path in (binary, debug):
        assert subprocess.run([ARM_OBJDUMP, "-d", str(path)], capture_output=True).returncode == 0
        assert subprocess.run(["readelf", "-a", str(path)], capture_output=True).returncode == 0
    assert elflint_messages(binary) <= elflint_messages(ref_binary)
    assert elflint_messages(debug, "-d") <= elflint_messages(ref_debug, "-d")
    combined = tmp_path / "combined"
    unstrip = subprocess.run(["eu-unstrip", "-o", str(combined), str(binary), str(debug)], capture_output=True, text=True)
    assert unstrip.returncode == 0, unstrip.stderr
    assert elflint_messages(combined) <= elflint_messages(armhf_exe)
    check = check_tree(root, policy)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------------------------
# 5a. minidebuginfo's xz: xz -6's dictionary at most, whatever the size of the symbol ELF

XZ_PEAK = """
import resource, sys
from splitdebug.tree import rewrite
data = bytes(27 << 20)
assert rewrite._xz(data)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_minidebuginfo_xz_dictionary_is_bounded(tmp_path: Path) -> None:
    """A 27 MiB input: xz -6's 8 MiB dictionary (it was 27 MiB: 325 MB peak for the encoder, now ~110)."""
    from splitdebug.tree import rewrite
    data = bytes(27 << 20)
    packed = tmp_path / "mini.xz"
    packed.write_bytes(rewrite._xz(data))
    listing = subprocess.run(["xz", "--robot", "-lvv", str(packed)], capture_output=True, text=True, check=True).stdout
    assert "--lzma2=dict=8MiB" in listing, listing
    assert lzma.decompress(packed.read_bytes()) == data
    small = rewrite._xz(b"x" * 1000)  # small inputs: a dictionary their size, no 8 MiB of tables
    assert lzma.decompress(small) == b"x" * 1000
    peak = subprocess.run([sys.executable, "-c", XZ_PEAK], env=env_with_package(), capture_output=True,
                          text=True, check=True).stdout
    assert int(peak) < 200, f"{peak} MB"


# VmHWM, not ru_maxrss: that one carries the parent's peak over fork and exec (pytest's own, here).
MINI_PEAK = """
import re, sys
from splitdebug.elf import read, write
h = read.read_headers(sys.argv[1])
with open(sys.argv[1], "rb") as f:
    size, pieces = write.mini_debuginfo_stream(h, f)
    assert sum(map(len, pieces)) == size > 15 << 20
print(int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024)
"""


def test_minidebuginfo_of_many_symbols_is_bounded(tmp_path: Path) -> None:
    """150,000 function symbols with C++-long names (an 18 MB symbol ELF), taken in pieces as xz
    takes them: 29 MB peak, 17 MB of it the interpreter and the package (110 MB with the names and
    the ELF held whole, 195 MB when the .symtab was read whole, twice over, and the result copied)."""
    name = "_ZN7variety{:06d}_a_rather_long_template_instantiation_name_as_cxx_makes_them_IiEEvRKSt6vectorIiSaIiEE"
    lines = [".text"] + [f".type {n},@function\n{n}:\nret\n.size {n},1" for n in map(name.format, range(150000))]
    (tmp_path / "many.s").write_text("\n".join([*lines, '.section .note.GNU-stack,"",@progbits', ""]))
    subprocess.run(["gcc", "-nostdlib", "-Wl,-e,0", "-o", str(tmp_path / "many"), str(tmp_path / "many.s")], check=True)
    peak = subprocess.run([sys.executable, "-c", MINI_PEAK, str(tmp_path / "many")], env=env_with_package(),
                          capture_output=True, text=True, check=True).stdout
    assert int(peak) < 40, f"{peak} MB"  # 43 MB when the string table's pages are kept


TWIN_A = "static int twin(int x) { return x * 3; }\nint call_a(int x) { return twin(x); }\n"
TWIN_B = "static int twin = 5;\nstatic int lonely = 7;\nint get_b(void) { return twin + lonely++; }\n"
TWIN_MAIN = "int call_a(int); int get_b(void);\nint main(int c, char **v) { (void)v; return call_a(c) + get_b(); }\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_minidebuginfo_keeps_an_object_named_as_a_function(engine: str, tmp_path: Path) -> None:
    """objcopy --keep-symbols keeps every symbol of a listed name: the static variable `twin` of one
    file goes with the static function `twin` of another, `lonely` does not (the in-process choice
    finds it by hash, then by bytes)."""
    srcs = []
    for stem, text in (("a", TWIN_A), ("b", TWIN_B), ("main", TWIN_MAIN)):
        srcs.append(tmp_path / f"{stem}.c")
        srcs[-1].write_text(text)
    root = tmp_path / "root"
    binary = root / "usr/bin/twins"
    binary.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-g", "-O0", "-Wl,--build-id=sha1", "-o", str(binary), *map(str, srcs)], check=True)
    proc = split_tree(root, "redhat", engine)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = elfread.section_bytes(binary, elfread.read_elf(binary), ".gnu_debugdata")
    assert data is not None
    (tmp_path / "mini").write_bytes(lzma.decompress(data))
    symbols = {(n, t) for n, t, _, _ in elfread.iter_symbols(tmp_path / "mini", ".symtab")}
    assert {("twin", "STT_FUNC"), ("twin", "STT_OBJECT"), ("call_a", "STT_FUNC")} <= symbols, symbols
    assert "lonely" not in {n for n, _ in symbols}


# ------------------------------------------------------------------------------------------------
# 5b. Debug sections the linker compressed with zstd become zlib under a zlib policy

def compression_types(path: Path) -> set[int]:
    """ch_type of every compressed .debug_* section (1 zlib, 2 zstd)."""
    h = elfread.read_headers(path)
    out = set()
    with open(path, "rb") as f:
        for s in h.sections:
            if s.name.startswith(".debug_") and s.flags & 0x800 and s.type != 8:
                f.seek(s.offset)
                out.add(int.from_bytes(f.read(4), "little"))
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_zstd_debug_sections_become_the_policy_s_zlib(policy: str, engine: str, tmp_path: Path) -> None:
    """gcc -Wl,--compress-debug-sections=zstd: the debug file's sections are zlib (elfutils 0.188 and
    dwz cannot read zstd), gdb reads them, check passes."""
    exe = build(tmp_path / "zstd", STATIC.replace("static", "zstd"), "-Wl,--compress-debug-sections=zstd")
    assert compression_types(exe) == {2}
    root = tmp_path / "root"
    binary = in_tree(exe, root, "usr/bin/prog")
    proc = split_tree(root, policy, engine)
    assert proc.returncode == 0 and "1 binaries split" in proc.stdout, proc.stdout + proc.stderr
    debug = debug_file_of(root, binary)
    assert compression_types(debug) == {1}
    link = elfread.read_debuglink(binary, elfread.read_elf(binary))
    assert link == (debug.name, zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF)
    assert resolves(gdb_info_line(root / "usr/lib/debug", binary, "zstd_entry"), "zstd")
    unstrip = subprocess.run(["eu-unstrip", "-o", str(tmp_path / "combined"), str(binary), str(debug)],
                             capture_output=True, text=True)
    assert unstrip.returncode == 0, unstrip.stderr
    check = check_tree(root, policy)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------------------------
# 5c. check: every section link names a fitting section (SD106), as bug 1's output did not

def set_link(path: Path, section: str, link: int) -> None:
    """Patch one section header's sh_link in place (an ELF64 little-endian file)."""
    h = elfread.read_headers(path)
    (sec,) = [s for s in h.sections if s.name == section]
    shoff = int.from_bytes(h.ehdr[0x28:0x30], "little")
    with open(path, "r+b") as f:
        f.seek(shoff + sec.ndx * 64 + 40)
        f.write(link.to_bytes(4, "little"))


@pytest.mark.parametrize("damage", ["none", "out-of-range", "wrong-type", "debug-file"])
def test_check_finds_invalid_section_links(static_exe: Path, damage: str, tmp_path: Path) -> None:
    """Our static split passes; bug 1's shape (.rela.plt linking a section the binary no longer has,
    or a string table) and a debug file whose .symtab links no string table are SD106 errors."""
    root = tmp_path / "root"
    binary = in_tree(static_exe, root, "usr/bin/prog")
    assert split_tree(root, "debian").returncode == 0
    debug = debug_file_of(root, binary)
    sections = readelf_sections(binary)
    if damage == "out-of-range":
        set_link(binary, ".rela.plt", len(sections) + 6)  # where the input's .symtab was
    elif damage == "wrong-type":
        set_link(binary, ".rela.plt", sections.index(".shstrtab") + 1)
    elif damage == "debug-file":
        set_link(debug, ".symtab", readelf_sections(debug).index(".debug_info") + 1)
    check = run_cli("check", "--policy", "debian", "--format", "json", root)
    findings = [(f["rule"], f["path"]) for f in json.loads(check.stdout)["findings"]]
    image = "/" + str(debug.relative_to(root)) if damage == "debug-file" else "/usr/bin/prog"
    expected = [] if damage == "none" else [("SD106", image)]
    assert [f for f in findings if f[0] == "SD106"] == expected, check.stdout
    if damage == "none":
        assert check.returncode == 0, check.stdout
    else:
        assert check.returncode == 1


# ------------------------------------------------------------------------------------------------
# Found by the variety corpus: a split binary that keeps its .symtab is not split again

@pytest.mark.parametrize("policy, engine", [("redhat", "tools"), ("redhat-g", "builtin"), ("redhat-g", "tools")])
def test_split_binary_keeping_symtab_is_not_split_again(static_exe: Path, elfutils_g_policy: Path, policy: str,
                                                        engine: str, tmp_path: Path) -> None:
    """eu-strip -g keeps every .symtab (and eu-strip alone kept the one a static executable's .rela.plt
    links, until we unlinked it): a rerun used to split such a binary again and replace its debug file
    by one without DWARF."""
    pol: str | Path = elfutils_g_policy if policy == "redhat-g" else policy
    root = tmp_path / "root"
    binary = in_tree(static_exe, root, "usr/bin/prog")
    assert split_tree(root, pol, engine).returncode == 0
    assert elfread.read_elf(binary).has_symtab == (policy == "redhat-g")
    before = tree_digest(root)
    again = split_tree(root, pol, engine)
    assert again.returncode == 0 and "0 binaries split" in again.stdout, again.stdout
    assert tree_digest(root) == before
    assert ".debug_info" in readelf_sections(debug_file_of(root, binary))
