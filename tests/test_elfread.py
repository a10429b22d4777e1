"""The struct-based ELF reader against pyelftools, the reference, on real files of every shape."""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from conftest import LIBRARY, PROGRAM, compile_c
from splitdebug.elf import read as elfread

PYELF_TYPE_ALIASES = {"STT_LOOS": "STT_GNU_IFUNC", "STB_LOOS": "STB_GNU_UNIQUE"}


def reference(path: Path) -> dict[str, object]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sections = [(s.name, s["sh_type"], s["sh_flags"], s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()]
        build_id = None
        soname = None
        for s in elf.iter_sections():
            if s["sh_type"] == "SHT_NOTE" and build_id is None:
                for n in s.iter_notes():
                    if n["n_type"] == "NT_GNU_BUILD_ID" and n["n_name"] == "GNU":
                        build_id = n["n_desc"]
            if isinstance(s, DynamicSection) and s["sh_type"] == "SHT_DYNAMIC":
                for t in s.iter_tags():
                    if t.entry.d_tag == "DT_SONAME":
                        soname = t.soname
        symbols = {}
        for table in (".symtab", ".dynsym"):
            sec = elf.get_section_by_name(table)
            if isinstance(sec, SymbolTableSection):
                symbols[table] = [(y.name, PYELF_TYPE_ALIASES.get(y["st_info"]["type"], y["st_info"]["type"]),
                                   PYELF_TYPE_ALIASES.get(y["st_info"]["bind"], y["st_info"]["bind"]),
                                   y["st_shndx"] != "SHN_UNDEF") for y in sec.iter_symbols()]
        return {"type": elf.header["e_type"], "machine": elf.header["e_machine"], "class": elf.elfclass,
                "sections": sections, "build_id": build_id, "soname": soname, "symbols": symbols}


def ours(path: Path) -> dict[str, object]:
    info = elfread.read_elf(path)
    return {"type": info.elf_type, "machine": info.machine, "class": info.elfclass,
            "sections": [(s.name, s.type, s.flags, s.offset, s.size) for s in info.sections],
            "build_id": info.build_id, "soname": info.soname,
            "symbols": {t: list(elfread.iter_symbols(path, t)) for t in (".symtab", ".dynsym")
                        if (s := info.section(t)) is not None and s.type in ("SHT_SYMTAB", "SHT_DYNSYM")}}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("elf")
    prog = compile_c(d / "prog", PROGRAM)
    lib = compile_c(d / "libx.so", LIBRARY, shared=True, flags=("-Wl,-soname,libx.so.1",))
    m32 = d / "m32"
    subprocess.run(["gcc", "-m32", "-g", "-Wl,--build-id", "-o", str(m32), "-x", "c", "-"],
                   input=b"int main(void){return 0;}", check=True)
    dbg = d / "prog.debug"
    subprocess.run(["objcopy", "--only-keep-debug", "--compress-debug-sections=zlib", str(prog), str(dbg)], check=True)
    eu_dbg = d / "lib.debug"
    subprocess.run(["eu-strip", "-f", str(eu_dbg), "-o", str(d / "lib.stripped"), str(lib)], check=True)
    system = [Path(p) for p in sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libc.so.6")
                                      + glob.glob("/usr/bin/objcopy") + glob.glob("/usr/lib/x86_64-linux-gnu/libstdc++.so.6*"))
              if not Path(p).is_symlink()]
    return [prog, lib, m32, dbg, eu_dbg, d / "lib.stripped", *system]


def test_reader_agrees_with_pyelftools(samples: list[Path]) -> None:
    assert len(samples) >= 7
    for path in samples:
        ref, got = reference(path), ours(path)
        for key in ref:
            assert got[key] == ref[key], f"{path}: {key}"


def test_debug_file_is_recognised(samples: list[Path]) -> None:
    info = elfread.read_elf(samples[3])
    assert info.is_debug_file and info.kind is None and info.build_id == elfread.read_elf(samples[0]).build_id
    assert elfread.read_elf(samples[1]).soname == "libx.so.1"
    assert elfread.read_elf(samples[2]).elfclass == 32


def test_symbol_versions_agree_with_pyelftools(tmp_path: Path) -> None:
    """Version nodes and each .dynsym entry's version, against pyelftools' GNU version sections."""
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerSymSection
    script = tmp_path / "v.map"
    script.write_text("LIBV_1 { global: lib_helper; local: *; };\nLIBV_2 { global: lib_entry; } LIBV_1;\n")
    lib = compile_c(tmp_path / "libv.so", LIBRARY, shared=True, flags=(f"-Wl,--version-script={script}",))
    info = elfread.read_elf(lib)
    dynsym = list(elfread.iter_symbols(lib, ".dynsym"))
    nodes, versions = elfread.symbol_versions(lib, info, len(dynsym))
    with open(lib, "rb") as f:
        elf = ELFFile(f)
        verdef = next(s for s in elf.iter_sections() if isinstance(s, GNUVerDefSection))
        ref_nodes = {aux.name for vd, auxes in verdef.iter_versions() for aux in list(auxes)[:1]
                     if not vd["vd_flags"] & 1}
        versym = next(s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection))
        ref = [versym.get_symbol(i)["ndx"] for i in range(len(dynsym))]
    assert nodes == ref_nodes == {"LIBV_1", "LIBV_2"}
    by_name = dict(zip((d[0] for d in dynsym), versions, strict=True))
    assert by_name["lib_helper"] == "LIBV_1" and by_name["lib_entry"] == "LIBV_2"
    assert [v is None for v in versions] == [r in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL") for r in ref]


def test_full_headers_agree_with_pyelftools(samples: list[Path]) -> None:
    """read_headers (what the in-process split lays files out from): every section and program
    header field, the name table index and the ELF header bytes, against pyelftools."""
    for path in samples:
        h = elfread.read_headers(path)
        with open(path, "rb") as f:
            elf = ELFFile(f)
            ref_sections = [(s.name, s["sh_name"], s["sh_flags"], s["sh_addr"], s["sh_offset"], s["sh_size"],
                             s["sh_link"], s["sh_info"], s["sh_addralign"], s["sh_entsize"])
                            for s in elf.iter_sections()]
            ref_segments = [(p["p_offset"], p["p_vaddr"], p["p_paddr"], p["p_filesz"], p["p_memsz"],
                             p["p_flags"], p["p_align"]) for p in elf.iter_segments()]
            assert h.shstrndx == elf["e_shstrndx"] and h.phoff == elf["e_phoff"], path
            assert h.is64 == (elf.elfclass == 64) and h.byte_order == ("<" if elf.little_endian else ">")
        assert [(s.name, s.name_off, s.flags, s.addr, s.offset, s.size, s.link, s.info, s.addralign, s.entsize)
                for s in h.sections] == ref_sections, path
        assert [s.ndx for s in h.sections] == list(range(len(h.sections)))
        assert [(p[2], p[3], p[4], p[5], p[6], p[1], p[7]) for p in h.program_headers] == ref_segments, path
        assert h.ehdr == path.read_bytes()[:len(h.ehdr)]
