"""dwz in groups: past the policy's dwz_multifile_mib, each group of debug files gets its own
multifile, so dwz's memory stays bounded whatever the tree size. gdb and the checker are the oracle."""

from __future__ import annotations

import functools
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from distro_helpers import (NAME, RPM_ARGS, altlink, debuginfod_session, extract_deb, extract_rpm, gdb,
                            package)
from splitdebug.elf import read as elfread
from splitdebug.layout import PackageInfo, StageRoot
from splitdebug.policy import load_policy
from splitdebug.tree.dwz import Fresh, dwarf_size, dwz_groups, run_dwz, shipped_pairs
from splitdebug.tree.rewrite import Tools

PROGRAMS = 6
STRUCTS = 3600  # about 0.39 MB of .debug_info + .debug_str per program: 2 programs per 1 MiB group


def sizes(*mib: float) -> list[tuple[Path, int]]:
    return [(Path(f"f{i}"), int(m * 2**20)) for i, m in enumerate(mib)]


def names(groups: list[list[Path]]) -> list[list[str]]:
    return [[p.name for p in g] for g in groups]


def test_groups_are_even_in_order_and_within_the_limit() -> None:
    files = sizes(*[0.4] * 6)
    assert names(dwz_groups(files, 2**20)) == [["f0", "f1"], ["f2", "f3"], ["f4", "f5"]]
    # 10 x 0.3 MiB over 1 MiB: three groups would need 4 files (1.2 MiB) in one; four groups, and even,
    # not 3 + 3 + 3 + a leftover of one file.
    groups = dwz_groups(sizes(*[0.3] * 10), 2**20)
    assert sorted(len(g) for g in groups) == [2, 2, 3, 3]
    assert [p for g in groups for p in g] == [p for p, _ in sizes(*[0.3] * 10)]


def test_a_file_over_the_limit_is_alone_and_no_limit_is_one_group() -> None:
    assert names(dwz_groups(sizes(0.2, 3, 0.2, 0.2), 2**20)) == [["f0"], ["f1"], ["f2", "f3"]]
    assert names(dwz_groups(sizes(5, 5, 5), None)) == [["f0", "f1", "f2"]]
    assert names(dwz_groups(sizes(0.2, 0.3), 2**20)) == [["f0", "f1"]]
    assert dwz_groups([], 2**20) == [] and dwz_groups([], None) == []


def test_dwz_groups_asks_for_groups_run_at_once_when_each_holds_16_mib() -> None:
    """The policy's dwz_groups: that many even groups (for as many cores) once each holds
    DWZ_GROUP_MIN_MIB of DWARF; fewer below it; the size limit still cuts more where it must."""
    assert names(dwz_groups(sizes(*[4] * 10), None, 2)) == [["f0", "f1", "f2", "f3", "f4"],
                                                             ["f5", "f6", "f7", "f8", "f9"]]
    assert names(dwz_groups(sizes(*[3] * 10), None, 2)) == [[f"f{i}" for i in range(10)]]  # 30 MiB: one
    assert len(dwz_groups(sizes(*[4] * 10), None, 4)) == 2  # 40 MiB: two groups of 16 at most
    assert len(dwz_groups(sizes(*[4] * 10), 8 * 2**20, 2)) == 5  # the limit wants more
    assert dwz_groups(sizes(*[4] * 10), None, 1) == dwz_groups(sizes(*[4] * 10), None)


def build_tree(src: Path, root: Path, pair_types: bool = True) -> list[Path]:
    """Programs sharing one header of STRUCTS types (what dwz moves to a multifile); with `pair_types`,
    each pair of programs also shares a header of its own (so each group's multifile differs)."""
    src.mkdir()
    (src / "types.h").write_text("\n".join(
        f"struct s_{i} {{ int a_{i}; long b; char *c; double d_{i}; struct s_{max(i - 1, 0)} *prev; short f[4]; }};"
        for i in range(STRUCTS)))
    for pair in range(PROGRAMS // 2):
        (src / f"pair{pair}.h").write_text("\n".join(
            f"struct pair{pair}_{i} {{ int x; char *name_{i}; }};" for i in range(20)) if pair_types else "")
    bindir = root / "usr/bin"
    bindir.mkdir(parents=True)
    progs = []
    for n in range(PROGRAMS):
        (src / f"p{n}.c").write_text(f'#include "types.h"\n#include "pair{n // 2}.h"\n'
                                     f'int main(void) {{ struct s_{n} x = {{0}}; return x.a_{n}; }}\n')
        progs.append(bindir / f"p{n}")
        subprocess.run(["gcc", "-g", "-O1", "-fno-eliminate-unused-debug-types", "-Wl,--build-id",
                        "-o", str(progs[-1]), f"p{n}.c"], cwd=src, check=True)
    return progs


@dataclass(frozen=True)
class Grouped:
    distro: str
    policy: Path
    root: Path
    progs: list[Path]
    extra: tuple[str, ...]
    stdout: str
    multifiles: list[str]  # expected, under usr/lib/debug/.dwz


@pytest.fixture(scope="module", params=["debian", "redhat"])
def grouped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Grouped:
    distro = request.param
    tmp = tmp_path_factory.mktemp(distro)
    policy = tmp / f"{distro}-small.yaml"
    text = (REPO / "configs" / f"{distro}.yaml").read_text()
    assert "\ndwz_multifile_mib: 128\n" in text
    policy.write_text(text.replace("\ndwz_multifile_mib: 128\n", "\ndwz_multifile_mib: 1\n"))
    root = tmp / "root"
    progs = build_tree(tmp / "src", root)
    extra = RPM_ARGS if distro == "redhat" else ("--package", NAME)
    proc = run_cli("split", "--policy", policy, "--jobs", "2", *extra, root)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    base = f"x86_64-linux-gnu/{NAME}" if distro == "debian" else f"{NAME}-1.0-1.x86_64"
    expected = ([f"{base}.debug", f"{base}.1.debug", f"{base}.2.debug"] if distro == "debian"
                else [base, f"{base}.1", f"{base}.2"])
    return Grouped(distro, policy, root, progs, extra, proc.stdout, expected)


def gdb_reads_lines_and_types(progs: list[Path], debug_dir: Path) -> None:
    for n, prog in enumerate(progs):
        out = gdb(prog, debug_dir, "info line main", f"ptype struct s_{STRUCTS - 1 - n}")
        assert re.search(r'Line \d+ of "[^"]+" starts at address', out), out
        assert f"double d_{STRUCTS - 1 - n};" in out and "could not find" not in out, out


def test_groups_get_their_own_multifiles_and_gdb_follows_each(grouped: Grouped) -> None:
    root = grouped.root
    dwz_dir = root / "usr/lib/debug/.dwz"
    multifiles = sorted(p.relative_to(dwz_dir).as_posix() for p in dwz_dir.rglob("*") if p.is_file())
    assert multifiles == sorted(grouped.multifiles)
    for line in grouped.multifiles:
        assert f"dwz multifile /usr/lib/debug/.dwz/{line}" in grouped.stdout, grouped.stdout
    # Each multifile serves its group of two, named by path and build-id.
    users: dict[str, int] = {}
    for debug in (root / "usr/lib/debug").rglob("*.debug"):
        if ".dwz" in debug.parts or debug.is_symlink():  # Red Hat's build-id links name the same files
            continue
        name = altlink(debug)
        assert name is not None, debug
        target = (debug.parent / name).resolve() if grouped.distro == "redhat" else root / name.lstrip("/")
        assert target.is_file(), (debug, name)
        key = target.relative_to(dwz_dir).as_posix()
        users[key] = users.get(key, 0) + 1
    assert users == {m: 2 for m in grouped.multifiles}
    inodes = {(dwz_dir / m).stat().st_ino for m in grouped.multifiles}
    assert len(inodes) == 3  # each group shares a header of its own: three different multifiles
    gdb_reads_lines_and_types(grouped.progs, root / "usr/lib/debug")
    check = run_cli("check", "--policy", grouped.policy, *grouped.extra, root)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_debug_package_ships_every_multifile(grouped: Grouped, tmp_path: Path) -> None:
    built = package(grouped.root, str(grouped.policy), tmp_path / "out")
    unpacked = tmp_path / "unpacked"
    for path in built.values():
        (extract_deb if grouped.distro == "debian" else extract_rpm)(path, unpacked)
    for line in grouped.multifiles:
        assert (unpacked / "usr/lib/debug/.dwz" / line).is_file(), line
    gdb_reads_lines_and_types([unpacked / "usr/bin" / p.name for p in grouped.progs],
                                    unpacked / "usr/lib/debug")
    if grouped.distro == "redhat":
        # debuginfod serves each group's multifile by the build-id its .gnu_debugaltlink names.
        wanted: dict[str, Path] = {}
        for debug in (grouped.root / "usr/lib/debug").rglob("*.debug"):
            if ".dwz" in debug.parts or debug.is_symlink():
                continue
            name, build_id = elfread.read_debugaltlink(debug, elfread.read_elf(debug)) or ("", "")
            wanted[build_id] = (debug.parent / name).resolve()
        assert len(wanted) == len(grouped.multifiles)
        served = debuginfod_session(built["main"].parent, tmp_path, {b: ["debuginfo", b] for b in wanted})
        assert "error" not in served, served
        for build_id, multifile in wanted.items():
            assert served[build_id]["rc"] == 0, served[build_id]
            assert Path(served[build_id]["path"]).read_bytes() == multifile.read_bytes()
    if grouped.distro == "debian":
        proc = subprocess.run(["lintian", "--no-cfg", "--debug", "--tag-display-limit", "0", *map(str, built.values())],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, 2), proc.stderr  # 2: tags about the demo binaries themselves
        assert f"Running check: files/debug-packages on binary:{NAME}-dbgsym_" in proc.stdout + proc.stderr
        tags = re.findall(r"^([EW]): (\S+): (\S+)", proc.stdout, re.M)
        assert [t for t in tags if "debug" in t[2] or "strip" in t[2] or t[1].endswith("-dbgsym")] == [], proc.stdout


def test_a_tree_under_the_limit_keeps_one_multifile(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_tree(tmp_path / "src", root)
    proc = run_cli("split", "--policy", "debian", "--package", NAME, root)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (root / "usr/lib/debug/.dwz").rglob("*") if p.is_file()] == [f"{NAME}.debug"]
    assert elfread.read_elf(root / f"usr/lib/debug/.dwz/x86_64-linux-gnu/{NAME}.debug").build_id is not None


def test_without_a_package_name_dwz_runs_file_by_file_and_says_so_once(tmp_path: Path) -> None:
    policy = tmp_path / "debian-small.yaml"
    policy.write_text((REPO / "configs/debian.yaml").read_text().replace("\ndwz_multifile_mib: 128\n",
                                                                          "\ndwz_multifile_mib: 1\n"))
    root = tmp_path / "root"
    progs = build_tree(tmp_path / "src", root)
    proc = run_cli("split", "--policy", policy, root)
    assert proc.returncode == 0, proc.stderr
    warning = "no --package: dwz runs file by file (the multifile {debug_root}/.dwz/{multiarch}/{package}.debug needs them)"
    assert proc.stderr.count(warning) == 1, proc.stderr
    assert not (root / "usr/lib/debug/.dwz").exists()
    assert all(altlink(d) is None for d in (root / "usr/lib/debug").rglob("*.debug"))
    gdb_reads_lines_and_types(progs, root / "usr/lib/debug")


def test_dwz_runs_in_parallel_when_it_can(tmp_path: Path) -> None:
    """dwz 0.15 takes -j (the bootstrap's); a dwz that does not know it gets no -j."""
    from splitdebug.tree.dwz import _takes_jobs, find_dwz

    tool = find_dwz()
    assert tool is not None and _takes_jobs(tool)
    older = tmp_path / "dwz-0.14"
    older.write_text("#!/bin/sh\necho 'Usage: dwz [-v] [-q] [-h] [-l COUNT] [-L COUNT] [-m COMMONFILE] [FILES]'\n")
    older.chmod(0o755)
    assert not _takes_jobs(str(older))
    assert not _takes_jobs(str(tmp_path / "no-such-dwz"))


def test_groups_sharing_the_same_dwarf_get_one_multifile_under_several_names(tmp_path: Path) -> None:
    """Byte-identical multifiles (one build-id) are hard links of one file, compressed once."""
    policy = tmp_path / "debian-small.yaml"
    policy.write_text((REPO / "configs/debian.yaml").read_text().replace("\ndwz_multifile_mib: 128\n",
                                                                          "\ndwz_multifile_mib: 1\n"))
    root = tmp_path / "root"
    progs = build_tree(tmp_path / "src", root, pair_types=False)
    proc = run_cli("split", "--policy", policy, "--package", NAME, root)
    assert proc.returncode == 0, proc.stderr
    dwz_dir = root / "usr/lib/debug/.dwz/x86_64-linux-gnu"
    names_ = sorted(p.name for p in dwz_dir.iterdir())
    assert names_ == [f"{NAME}.1.debug", f"{NAME}.2.debug", f"{NAME}.debug"]
    stats = [(dwz_dir / n).stat() for n in names_]
    assert len({st.st_ino for st in stats}) == 1 and stats[0].st_nlink == 3
    assert all(s.flags & 0x800 for s in elfread.read_headers(dwz_dir / names_[0]).sections
               if s.name == ".debug_str")  # compressed, as every debug file of the policy
    # The summary counts that file once.
    debug_bytes = int(proc.stdout.rsplit(" bytes of debug info", 1)[0].rsplit(", ", 1)[1])
    files = {p.stat().st_ino: p.stat().st_size for p in (root / "usr/lib/debug").rglob("*") if p.is_file()}
    assert debug_bytes == sum(files.values())
    gdb_reads_lines_and_types(progs, root / "usr/lib/debug")
    assert run_cli("check", "--policy", policy, "--package", NAME, root).returncode == 0


@pytest.mark.parametrize("limit", [2000, 800000])
def test_dwz_max_dies_leaves_a_bigger_file_as_it_is(tmp_path: Path, limit: int) -> None:
    """dwz -L (the policy's dwz_max_dies, which bounds dwz's memory): over the limit (each program has
    about 3600 structs' DIEs) dwz leaves every file as split, compressed, with no altlink and no
    warning, and gdb reads them; under it dwz shares their types in the multifile."""
    policy = tmp_path / "debian-dies.yaml"
    text = (REPO / "configs/debian.yaml").read_text()
    assert "\ndwz_max_dies: 800000\n" in text
    policy.write_text(text.replace("\ndwz_max_dies: 800000\n", f"\ndwz_max_dies: {limit}\n"))
    root = tmp_path / "root"
    progs = build_tree(tmp_path / "src", root)
    proc = run_cli("split", "--policy", policy, "--package", NAME, "-j", "2", root)
    assert proc.returncode == 0 and "warning" not in proc.stderr and "dwz" not in proc.stderr, proc.stderr
    debug = [p for p in (root / "usr/lib/debug/.build-id").rglob("*.debug") if not p.is_symlink()]
    assert len(debug) == PROGRAMS
    assert all((altlink(p) is None) == (limit == 2000) for p in debug)
    if limit == 2000:  # the whole DWARF still there, compressed after dwz declined (under the limit: 95 bytes left)
        assert all(s.flags & 0x800 for p in debug for s in elfread.read_headers(p).sections if s.name == ".debug_info")
    assert (root / "usr/lib/debug/.dwz").exists() == (limit == 800000)
    gdb_reads_lines_and_types(progs, root / "usr/lib/debug")



def test_each_group_compressed_as_its_dwz_ends_same_bytes_at_any_jobs(tmp_path: Path) -> None:
    """A group's files are compressed while the other groups' dwz runs (dwz.run_dwz): every debug file
    and multifile still ends with its .debug_info compressed (readelf's C flag), CRCs right (check),
    and the tree is byte for byte the one -j1 makes (one thing at a time, no overlap). Each program
    has DWARF of its own (types only it declares), which dwz leaves in its file, worth compressing."""
    policy = tmp_path / "debian-small.yaml"
    text = (REPO / "configs/debian.yaml").read_text()
    policy.write_text(text.replace("\ndwz_multifile_mib: 128\n", "\ndwz_multifile_mib: 1\n"))
    progs = build_tree(tmp_path / "src", tmp_path / "src-root")
    for n, prog in enumerate(progs):
        own = "\n".join(f"struct own{n}_{i} {{ int a; char *name_{i}; double w_{n}_{i}; }};" for i in range(400))
        (tmp_path / "src" / f"p{n}.c").write_text(f'#include "types.h"\n{own}\n'
                                                f'int main(void) {{ struct s_{n} x = {{0}}; return x.a_{n}; }}\n')
        subprocess.run(["gcc", "-g", "-O1", "-fno-eliminate-unused-debug-types", "-Wl,--build-id",
                        "-o", str(prog), f"p{n}.c"], cwd=tmp_path / "src", check=True)
    trees = {}
    for jobs in ("1", "2"):
        root = tmp_path / f"root-j{jobs}"
        subprocess.run(["cp", "-a", str(tmp_path / "src-root"), str(root)], check=True)
        proc = run_cli("split", "--policy", policy, "--package", NAME, "--jobs", jobs, root)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        trees[jobs] = {p.relative_to(root).as_posix(): (p.read_bytes() if not p.is_symlink() else str(p.readlink()))
                       for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}
        debug_files = [p for p in (root / "usr/lib/debug").rglob("*.debug") if p.is_file() and not p.is_symlink()]
        assert len(debug_files) == PROGRAMS + 3  # and the three groups' multifiles
        for debug in debug_files:
            sections = subprocess.run(["readelf", "-SW", str(debug)], capture_output=True, text=True).stdout
            row = next(line for line in sections.splitlines() if " .debug_info " in line)
            assert re.search(r"\bC\b", row.split(".debug_info", 1)[1]), (debug, row)
        check = run_cli("check", "--policy", policy, "--package", NAME, root)
        assert check.returncode == 0, check.stdout + check.stderr
    assert trees["1"] == trees["2"]


def test_a_group_s_dwz_starts_while_the_next_group_s_files_are_still_being_written(tmp_path: Path) -> None:
    """run_dwz's `fresh` files (the split still writing them, DWARF sizes from the inputs): group 1's
    dwz runs before groups 2 and 3 have their debug files, and the tree ends byte for byte as when
    every file was there from the start. Real dwz behind a wrapper that marks each group's run done;
    the later groups' files appear only once group 1's dwz has finished (60 s at most, else they count
    as failed splits and the bytes differ)."""
    plain = tmp_path / "debian-plain.yaml"
    small = tmp_path / "debian-small.yaml"
    text = (REPO / "configs/debian.yaml").read_text().replace("\ndwz_multifile_mib: 128\n", "\ndwz_multifile_mib: 1\n")
    small.write_text(text)
    plain.write_text(re.sub(r"\ncompress_debug_sections: \w+\n", "\ncompress_debug_sections: none\n",
                            re.sub(r"\ndwz: \w+\n", "\ndwz: none\n", text)))
    progs = build_tree(tmp_path / "src", tmp_path / "split")
    proc = run_cli("split", "--policy", plain, "--package", NAME, tmp_path / "split")
    assert proc.returncode == 0, proc.stderr
    marker = tmp_path / "group-done"
    wrapper = tmp_path / "dwz-wrapper"
    wrapper.write_text(f'#!/bin/sh\ndwz "$@"; rc=$?\ncase " $* " in *" -m "*) touch {marker};; esac\nexit $rc\n')
    wrapper.chmod(0o755)
    policy, pkg, tools = load_policy(str(small)), PackageInfo(NAME, "", "", ""), Tools.from_environ()
    trees = {}
    for gated in (False, True):
        root = tmp_path / f"root-{gated}"
        subprocess.run(["cp", "-a", str(tmp_path / "split"), str(root)], check=True)
        stage_root = StageRoot(root)
        pairs = shipped_pairs(stage_root, policy, pkg)
        assert len(pairs) == PROGRAMS
        fresh = {}
        if gated:
            marker.unlink()  # from the reference run's dwz
            held = tmp_path / "held"
            held.mkdir()
            for binary, debug in pairs:
                info = elfread.read_elf(debug)  # the same DWARF sizes as its unstripped input
                later = binary.name not in ("p0", "p1")  # group 1: the first two in path order
                if later:
                    debug.rename(held / debug.name)
                fresh[debug] = Fresh(functools.partial(appear, held / debug.name, debug, marker) if later else
                                     (lambda: None), True, dwarf_size(info))
        report = run_dwz(stage_root, policy, pkg, pairs, tools, str(wrapper), jobs=2, fresh=fresh)
        assert report.files == PROGRAMS and len(report.multifiles) == 3, report
        trees[gated] = {p.relative_to(root).as_posix(): p.read_bytes()
                        for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}
    assert trees[True] == trees[False]
    gdb_reads_lines_and_types([tmp_path / "root-True/usr/bin" / p.name for p in progs],
                              tmp_path / "root-True/usr/lib/debug")


def appear(held: Path, debug: Path, marker: Path) -> None:
    """A later group's debug file, written only once a group's dwz is done."""
    deadline = time.monotonic() + 60
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{debug}: no dwz ran before it was written")
        time.sleep(0.05)
    held.rename(debug)
