"""The variety corpus's recipes (tests/test_variety.py): one small program per language, built by each
toolchain the bootstrap installs, in the shapes that once broke a split.

A Kind says how to build a file and how to judge it (the function gdb looks up, how it runs); `make`
builds it, or says why this machine cannot (a missing toolchain is a skip, not a failure).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

C_SOURCE = """
#include <stdio.h>
#include <string.h>
static char big[BSS_SIZE];
static __thread int tls_counter = 3;
int variety_entry(const char *s) { tls_counter += (int)strlen(s); big[tls_counter] = 1; return tls_counter; }
int main(int argc, char **argv) { printf("variety %d %d\\n", variety_entry(argv[argc - 1]), big[4]); return 0; }
"""
# A custom allocated section (the program reads it) and a custom non-allocated one (kept or moved as the
# policy's tool does with any unknown section).
SCRIPTED_SOURCE = C_SOURCE.replace("static char big", """
__attribute__((used, section(".variety_first"))) static const char first[] = "first";
__asm__(".section .variety_meta,\\"\\",@progbits\\n.asciz \\"meta\\"\\n.previous");
static char big""").replace('big[4]);', 'big[4] + first[0]);')
# Allocated sections placed where the default script would not: one before .init, among the
# relocations' read-only segment, one after .bss (which makes .bss file-backed).
LINKER_SCRIPT = """
SECTIONS { .variety_first : { KEEP(*(.variety_first)) } } INSERT BEFORE .init;
SECTIONS { .variety_last : { BYTE(1) } } INSERT AFTER .bss;
"""
FORTRAN_SOURCE = """
integer function variety_entry(s)
  character(len=*), intent(in) :: s
  variety_entry = len_trim(s) * 3
end function
program main
  integer :: variety_entry
  character(len=32) :: arg
  call get_command_argument(command_argument_count(), arg)
  print '(a,i0)', 'fortran ', variety_entry(arg)
end program
"""
GO_SOURCE = """
package main

import (
\t"fmt"
\t"os"
)

//go:noinline
func varietyEntry(s string) int { return len(s) * 3 }

func main() { fmt.Printf("go %d\\n", varietyEntry(os.Args[len(os.Args)-1])) }
"""
# Freestanding: no libc for the foreign targets. The exit status carries the result.
FREESTANDING_SOURCE = """
static int counter = 3;
int variety_entry(const char *s) { int n = 0; while (s[n]) n++; counter += n; return counter; }
static void leave(long code) {
#if defined(__aarch64__)
  register long x0 __asm__("x0") = code, x8 __asm__("x8") = 93;
  __asm__ volatile("svc #0" :: "r"(x0), "r"(x8));
#elif defined(__s390x__)
  register long r2 __asm__("r2") = code;
  __asm__ volatile("svc 1" :: "r"(r2));
#elif defined(__powerpc__)
  register long r0 __asm__("r0") = 1, r3 __asm__("r3") = code;
  __asm__ volatile("sc" :: "r"(r0), "r"(r3));
#elif defined(__riscv)
  register long a0 __asm__("a0") = code, a7 __asm__("a7") = 93;
  __asm__ volatile("ecall" :: "r"(a0), "r"(a7));
#endif
  for (;;) {}
}
void _start(void) { leave(variety_entry("abc")); }
"""


@dataclass(frozen=True)
class Kind:
    lang: str = "c"                   # c, scripted (c + a linker script), fortran, go, freestanding
    flags: tuple[str, ...] = ()
    cc: str = "gcc"
    bss: int = 16
    after: tuple[tuple[str, ...], ...] = ()  # commands run on the built file (its path appended)
    debuglink: bool = False           # give it a .gnu_debuglink of its own first
    qemu: str = ""                    # foreign: the qemu-user that runs it
    objcopy: str = "objcopy"          # the objcopy that reads it ("": none installed does)
    full: bool = False                # only under SPLITDEBUG_FULL=1
    quick: tuple[str, str] = ()       # (policy, engine) of its CI case, where one matters; else taken in turn

    @property
    def function(self) -> str:
        return {"go": "main.varietyEntry", "fortran": "variety_entry_"}.get(self.lang, "variety_entry")

    @property
    def foreign(self) -> bool:
        return self.lang == "freestanding"

    def tools(self) -> list[str]:
        """The commands building and judging this kind needs."""
        compiler = {"fortran": "gfortran", "go": "go"}.get(self.lang, self.cc)
        need = [compiler, *(a[0] for a in self.after)]
        linker = next((f.split("=", 1)[1] for f in self.flags if f.startswith("-fuse-ld=")), None)
        if linker is not None:
            need.append(f"ld.{linker}")
        if self.foreign:
            need += [self.qemu, "gdb-multiarch", *([self.objcopy] if self.objcopy else [])]
        return need


FREESTANDING = ("-nostdlib", "-static", "-ffreestanding")
KINDS: dict[str, Kind] = {
    # gcc + GNU ld shapes
    "pie": Kind(),
    "static": Kind(flags=("-static",)),
    "static-pie": Kind(flags=("-static-pie",)),
    "m32": Kind(flags=("-m32",)),
    "split-dwarf": Kind(flags=("-gsplit-dwarf",)),
    "gz-zlib": Kind(flags=("-gz=zlib",)),
    "separate-code": Kind(flags=("-Wl,-z,separate-code",)),
    "noseparate-code": Kind(flags=("-Wl,-z,noseparate-code",)),
    "debuglink": Kind(debuglink=True),
    "huge-bss": Kind(bss=256 << 20),
    "build-id-md5": Kind(flags=("-Wl,--build-id=md5",)),
    "build-id-8": Kind(flags=("-Wl,--build-id=0x0102030405060708",)),
    "lto": Kind(flags=("-flto",)),
    "relr": Kind(flags=("-Wl,-z,pack-relative-relocs",)),
    "linker-script": Kind(lang="scripted"),
    "dwz": Kind(after=(("dwz",),)),
    # Two calls: patchelf 0.14 given both options at once writes a .gnu.version_r that BFD refuses.
    "patchelf": Kind(after=(("patchelf", "--set-rpath", "/opt/variety/lib"), ("patchelf", "--add-needed", "libm.so.6")),
                     quick=("yocto", "tools")),  # where objcopy's debug file links wrong sections
    "patchelf-relr": Kind(flags=("-Wl,-z,pack-relative-relocs",), after=(("patchelf", "--set-rpath", "/opt/v"),),
                          full=True),
    # other linkers and compilers
    "gold": Kind(flags=("-fuse-ld=gold",)),
    "gold-static": Kind(flags=("-fuse-ld=gold", "-static"), full=True),
    # objcopy's compression of eu-strip's debug file moved mold's note segment off its alignment
    "mold": Kind(flags=("-fuse-ld=mold",), quick=("redhat", "tools")),
    "mold-static": Kind(flags=("-fuse-ld=mold", "-static"), full=True),
    "clang-lld": Kind(cc="clang", flags=("-fuse-ld=lld",)),
    "clang-lld-static": Kind(cc="clang", flags=("-fuse-ld=lld", "-static"), full=True),
    "clang-lld-relr": Kind(cc="clang", flags=("-fuse-ld=lld", "-Wl,-z,pack-relative-relocs"), full=True),
    "gfortran": Kind(lang="fortran"),
    "go": Kind(lang="go", full=True),
    "go-pie": Kind(lang="go", flags=("-buildmode=pie",), quick=("yocto", "tools")),  # as patchelf
    # foreign: clang cross-compiles freestanding programs; lld links all but s390x (LLVM 14's lld has no
    # s390x), which the cross GNU ld links
    "aarch64": Kind(lang="freestanding", cc="clang", flags=("--target=aarch64-linux-gnu", "-fuse-ld=lld",
                    *FREESTANDING), qemu="qemu-aarch64-static", objcopy="aarch64-linux-gnu-objcopy"),
    "s390x": Kind(lang="freestanding", cc="clang", flags=("--target=s390x-linux-gnu", *FREESTANDING),
                  qemu="qemu-s390x-static", objcopy="s390x-linux-gnu-objcopy", full=True),
    "ppc32": Kind(lang="freestanding", cc="clang", flags=("--target=powerpc-linux-gnu", "-fuse-ld=lld",
                  *FREESTANDING), qemu="qemu-ppc-static", objcopy="", full=True),
    "riscv64": Kind(lang="freestanding", cc="clang", flags=("--target=riscv64-linux-gnu", "-fuse-ld=lld",
                    *FREESTANDING), qemu="qemu-riscv64-static", objcopy="", full=True),
}


def missing_tools(kind: Kind) -> list[str]:
    return [t for t in kind.tools() if shutil.which(t) is None]


def make(kind: Kind, out: Path) -> Path:
    """Build `kind` at `out` (its directory holds nothing else: -gsplit-dwarf's .dwo goes beside it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind.lang == "go":
        src = out.with_name("main.go")
        src.write_text(GO_SOURCE)
        # Go 1.19's linker takes a GNU build-id only as hex (-B gobuildid came in 1.20).
        build_id = hashlib.sha1(f"{GO_SOURCE}{kind.flags}".encode()).hexdigest()
        env = {**os.environ, "GO111MODULE": "off", "GOFLAGS": "", "CGO_ENABLED": "1"}
        subprocess.run(["go", "build", *kind.flags, f"-ldflags=-B 0x{build_id}", "-o", str(out), str(src)],
                       check=True, env=env, cwd=out.parent)
    else:
        suffix = {"fortran": ".f90"}.get(kind.lang, ".c")
        source = {"fortran": FORTRAN_SOURCE, "freestanding": FREESTANDING_SOURCE, "scripted": SCRIPTED_SOURCE,
                  }.get(kind.lang, C_SOURCE).replace("BSS_SIZE", str(kind.bss))
        src = out.with_name(out.name + suffix)
        src.write_text(source)
        compiler = "gfortran" if kind.lang == "fortran" else kind.cc
        flags = list(kind.flags)
        if kind.lang == "scripted":
            script = out.with_name("insert.ld")
            script.write_text(LINKER_SCRIPT)
            flags.append(f"-Wl,-T,{script}")
        subprocess.run([compiler, "-g", "-O1", "-Wl,--build-id=sha1", *flags, "-o", str(out), str(src)],
                       check=True, cwd=out.parent)
    for command in kind.after:
        subprocess.run([*command, str(out)], check=True, capture_output=True)
    if kind.debuglink:
        (out.parent / "old.debug").write_bytes(b"an older debug file\n")
        subprocess.run(["objcopy", f"--add-gnu-debuglink={out.parent / 'old.debug'}", str(out)], check=True)
    return out


def run(kind: Kind, binary: Path) -> tuple[int, str]:
    """The program's exit status and output (a foreign one under qemu-user)."""
    proc = subprocess.run([*([kind.qemu] if kind.qemu else []), str(binary), "abc"], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout
