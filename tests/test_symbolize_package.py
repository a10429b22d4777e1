"""The symbolizer names a module's package from its ELF package metadata note (.note.package), in
text and json; a module without the note names none."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from conftest import run_cli
from splitdebug import ldflags
from splitdebug.elf.read import read_elf
from splitdebug.symbolize import Options, symbolize_lines
from symbolize_helpers import build

SOURCE = "int __attribute__((noinline)) work(int x) { return x * 3; }\nint main(int c, char **v) { (void)v; return work(c); }\n"
NOTE = '{"type":"rpm","name":"demo","version":"1.0-3","architecture":"x86_64"}'


def _vaddr(binary: Path, name: str) -> int:
    with open(binary, "rb") as f:
        return int(ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]) + 4


def test_symbolize_names_the_package_of_a_noted_module(tmp_path: Path) -> None:
    script = tmp_path / "note.ld"
    ldflags.write_script(str(script), ldflags.linker_script(NOTE))
    noted = build(tmp_path / "build/noted", SOURCE, *ldflags.script_flags(str(script)))
    plain = build(tmp_path / "build/plain", SOURCE)
    root = tmp_path / "root"
    for binary in (noted, plain):
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, root / "usr/bin" / binary.name)
    proc = run_cli("split", "--policy", "debian", "-q", root)
    assert proc.returncode == 0, proc.stderr
    assert "FDO_PACKAGING_METADATA" in subprocess.run(["readelf", "-n", str(root / "usr/bin/noted")],
                                                      capture_output=True, text=True).stdout
    log = []
    for binary in (noted, plain):
        bid = read_elf(binary).build_id
        vaddr = _vaddr(binary, "work")
        log += [f"Module {binary.name} with build-id {bid}", f"#0  0x{vaddr:x} n/a ({binary.name} + {vaddr:#x})"]
    options = Options(roots=(root,), cache_dir=None)
    out = list(symbolize_lines(log, options))
    assert re.match(r"    work at \S+noted\.c:1:\d+ \[dwarf; package demo 1\.0-3\]$", out[2]), out
    assert re.match(r"    work at \S+plain\.c:1:\d+ \[dwarf\]$", out[5]), out
    objects = [json.loads(line) for line in symbolize_lines(log, options, fmt="json")]
    assert [(o["function"], o["package"], o["package_version"]) for o in objects] == \
        [("work", "demo", "1.0-3"), ("work", None, None)], objects
