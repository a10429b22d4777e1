"""The real tools on the same unstripped binaries: rpmbuild (find-debuginfo + rpm's build-id links +
dwz + -debugsource) and debhelper (dh_dwz + dh_strip + dh_gencontrol) lay out exactly what
`splitdebug split` / `splitdebug package` do.

Deliberate, documented differences (asserted below, not hidden):
- rpm re-seeds build-ids by default (`%_unique_build_ids`: debugedit --build-id-seed). splitdebug
  never changes a build-id (the linker's is what SCons, gdb and debuginfod already know), so the
  reference build turns re-seeding off (`%_no_recompute_build_ids`, as find-debuginfo -n).
- dh_dwz runs dwz on the unstripped binaries, so Debian's shipped binaries keep a
  `.gnu_debugaltlink`; splitdebug runs dwz on the separated .debug files and ships none.
- The dwz multifiles have the same names but not the same bytes (dwz saw different inputs).
- The .debug files' bytes differ (eu-strip/objcopy output vs dwz and compression order), so the
  Installed-Size of the -dbgsym package may differ by a few KiB.
- rpm's brp-elfperms (in %__os_install_post) takes the execute bit off shared libraries, and rpm
  makes `/usr/lib/.build-id/xx/yyy` links only for files with an execute bit: the library gets
  no main-package link, while its -debuginfo compat link `/usr/lib/debug/.build-id/xx/yyy ->
  ../../../.build-id/xx/yyy` is still made and dangles. splitdebug keeps the installed mode and
  links every split binary, so nothing dangles.
- minidebuginfo: find-debuginfo 5.0 means to keep the functions that are not in .dynsym, but its
  name comparison fails on padded names, so most .dynsym functions stay too; splitdebug keeps
  exactly the functions not in .dynsym.
- Names sharing one build-id get numbered links (.1, .2 …). rpm numbers the main package's in path
  order, but the -debuginfo package's in the order `find` lists the buildroot (readdir order: it
  varies from one file system to another). splitdebug uses path order for both, so the numbers of
  the `.N.debug` links are compared as a multiset per build-id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from distro_helpers import (NAME, RELEASE, RPM_ARGS, VERSION, build_unstripped, listing, mini_symbols,
                            nm_functions, package, rpm_listing, section_names, split, write_sources)
from conftest import run_cli
from splitdebug.elf import read as elfread

REFERENCE_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: reference build by rpm's own debuginfo machinery
License: MIT
%global _debugsource_packages 1
%global _include_minidebuginfo 1
%global _find_debuginfo_dwz_opts --run-dwz
%undefine _unique_build_ids
%global _no_recompute_build_ids 1
%description
Reference.
%debug_package
%prep
%setup -q -T -D -n {name}-{version}
%install
cp -a {unstripped}/. %{{buildroot}}/
%files
/usr/bin/*
/usr/lib64/*
"""


def unnumbered(entries: set[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """The debug-side build-id links with their duplicate number (.1, .2 …) blanked out."""
    dup = re.compile(r"(/\.build-id/[0-9a-f]{2}/[0-9a-f]+)\.\d+(\.debug)?$")
    return Counter((dup.sub(r"\1.N\2", path) if "/usr/lib/debug/" in path else path,
                    dup.sub(r"\1.N\2", kind) if "/usr/lib/debug/" in path else kind) for path, kind in entries)


def copy_tree(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", f"{src}/.", str(dest)], check=True)  # keeps the hard link
    return dest


def test_redhat_matches_rpmbuild(tmp_path: Path) -> None:
    build = tmp_path / "BUILD"
    src = write_sources(build / f"{NAME}-{VERSION}")
    unstripped = tmp_path / "unstripped"
    build_unstripped(src, unstripped, "/usr/lib64")
    # Ours first: rpmbuild removes its build directory (the sources) when it is done.
    ours = copy_tree(unstripped, tmp_path / "ours")
    split(ours, "redhat", *RPM_ARGS, "--source-root", src)
    our_rpms = package(ours, "redhat", tmp_path / "our-rpms")
    spec = tmp_path / "reference.spec"
    spec.write_text(REFERENCE_SPEC.format(name=NAME, version=VERSION, release=RELEASE, unstripped=unstripped))
    top = tmp_path / "rpmbuild"
    proc = subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"_builddir {build}",
                           str(spec)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--run-dwz" in proc.stdout + proc.stderr and "-m --unique-debug-suffix" in proc.stdout + proc.stderr
    ref = {p.name.split("-" + VERSION)[0]: p for p in (top / "RPMS/x86_64").glob("*.rpm")}
    ref_debuginfo, ref_debugsource, ref_main = ref[f"{NAME}-debuginfo"], ref[f"{NAME}-debugsource"], ref[NAME]

    # The tree `splitdebug split` made: the same paths, modes and symlink targets as rpm's packages.
    assert unnumbered(listing(ours, "/usr/lib/debug")) == unnumbered(rpm_listing(ref_debuginfo, "/usr/lib/debug"))
    src_dir = f"/usr/src/debug/{NAME}-{VERSION}-{RELEASE}.x86_64"
    assert listing(ours, src_dir) == rpm_listing(ref_debugsource, src_dir)
    lib_id = elfread.read_elf(ours / "usr/lib64/libdemo.so.1.0").build_id
    assert lib_id is not None
    lib_link = (f"/usr/lib/.build-id/{lib_id[:2]}/{lib_id[2:]}", "link -> ../../../../usr/lib64/libdemo.so.1.0")
    for our_main in (listing(ours, "/usr/lib/.build-id"), rpm_listing(our_rpms["main"], "/usr/lib/.build-id")):
        ref_links = rpm_listing(ref_main, "/usr/lib/.build-id")
        assert ref_links <= our_main and lib_link in our_main - ref_links
        assert our_main - ref_links <= {lib_link, (f"/usr/lib/.build-id/{lib_id[:2]}", "dir 755")}
    # The packages `splitdebug package` made: the same file lists and the same provides.
    for role, ref_rpm in (("debuginfo", ref_debuginfo), ("debugsource", ref_debugsource)):
        assert unnumbered(rpm_listing(our_rpms[role])) == unnumbered(rpm_listing(ref_rpm)), role

    def provides(rpm: Path) -> list[str]:
        return subprocess.run(["rpm", "-qp", "--provides", str(rpm)], capture_output=True, text=True,
                              check=True).stdout.splitlines()
    assert provides(our_rpms["debuginfo"]) == provides(ref_debuginfo)
    # minidebuginfo: the functions not in .dynsym, in both. find-debuginfo 5.0 also keeps most of the
    # .dynsym ones: it compares `nm --format=sysv` names, padded with blanks, against `nm -D` names
    # (deliberate difference: splitdebug keeps what it means to keep; gdb names them from .dynsym).
    ref_root = tmp_path / "ref-root"
    ref_root.mkdir()
    payload = subprocess.run(["rpm2cpio", str(ref_main)], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=payload, cwd=ref_root, check=True)
    for name in ("usr/bin/prog", "usr/bin/tool", "usr/lib64/libdemo.so.1.0"):
        theirs, mine = mini_symbols(ref_root / name, tmp_path), mini_symbols(ours / name, tmp_path)
        dynamic = nm_functions(ours / name, dynamic=True)
        assert mine == theirs - dynamic and not mine & dynamic, name
        assert "prog_entry" in mini_symbols(ours / "usr/bin/prog", tmp_path)

    # `check` accepts what Fedora ships: every rpm of the stock build unpacked into one root. The
    # library's compat link dangles (brp-elfperms, see above): a warning, not an error.
    for rpm in (ref_debuginfo, ref_debugsource):
        payload = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
        subprocess.run(["cpio", "-idm", "--quiet"], input=payload, cwd=ref_root, check=True)
    proc = run_cli("check", "--policy", "redhat", *RPM_ARGS, "--format", "json", ref_root)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, "\n".join(f"{f['rule']} {f['path']}: {f['reason']}" for f in doc["findings"])
    lib_compat = f"/usr/lib/debug/.build-id/{lib_id[:2]}/{lib_id[2:]}"
    # rpmbuild here links without Fedora's package-notes specs: each shipped binary lacks the note
    # redhat.yaml stamps, a warning (SD207), as for a Fedora package that opts out of it.
    unnoted = {("SD207", p) for p in ("/usr/bin/prog", "/usr/bin/prog-copy", "/usr/bin/tool", "/usr/lib64/libdemo.so.1.0")}
    assert {(f["rule"], f["path"]) for f in doc["findings"]} == {("SD503", lib_compat)} | unnoted
    assert run_cli("check", "--policy", "redhat", *RPM_ARGS, ours).returncode == 0


DEBIAN_CONTROL = """\
Source: {name}
Section: misc
Priority: optional
Maintainer: Demo Maintainer <demo@example.org>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2

Package: {name}
Architecture: any
Depends: ${{shlibs:Depends}}, ${{misc:Depends}}
Description: reference package
 Built by debhelper for comparison.
"""
DEBIAN_CHANGELOG = """\
{name} ({version}-{release}) unstable; urgency=medium

  * Reference.

 -- Demo Maintainer <demo@example.org>  Tue, 14 Nov 2023 22:13:20 +0000
"""


def test_debian_matches_dh_strip(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "debian").mkdir(parents=True)
    (pkg / "debian/control").write_text(DEBIAN_CONTROL.format(name=NAME))
    (pkg / "debian/changelog").write_text(DEBIAN_CHANGELOG.format(name=NAME, version=VERSION, release=RELEASE))
    src = write_sources(tmp_path / "src")
    staged = pkg / "debian" / NAME
    build_unstripped(src, staged, "/usr/lib/x86_64-linux-gnu")
    ours = copy_tree(staged, tmp_path / "ours")
    split(ours, "debian", "--package", NAME)
    our_debs = package(ours, "debian", tmp_path / "our-debs", "--maintainer", "Demo Maintainer <demo@example.org>")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEB_", "DH_"))}
    for argv in (["dh_dwz", f"-p{NAME}"], ["dh_strip", f"-p{NAME}"], ["dh_installdeb", f"-p{NAME}"],
                 ["dh_gencontrol", f"-p{NAME}"], ["dh_builddeb", f"-p{NAME}", f"--destdir={tmp_path}"]):
        proc = subprocess.run(argv, cwd=pkg, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    ref_root = pkg / "debian/.debhelper" / NAME / "dbgsym-root"

    # The same files, directories and modes under /usr/lib/debug (build-id names, dwz multifile).
    assert listing(ours, "/usr/lib/debug") == listing(ref_root, "/usr/lib/debug")
    assert any("/.dwz/x86_64-linux-gnu/" in e for e, _ in listing(ours, "/usr/lib/debug"))
    # Deliberate difference: dh_dwz leaves .gnu_debugaltlink in the shipped binaries, splitdebug does not.
    assert ".gnu_debugaltlink" in section_names(staged / "usr/bin/prog")
    assert ".gnu_debugaltlink" not in section_names(ours / "usr/bin/prog")

    # The -dbgsym package: the same contents and the same control fields as dh_gencontrol's.
    ref_dbgsym = tmp_path / f"{NAME}-dbgsym_{VERSION}-{RELEASE}_amd64.deb"

    def contents(deb: Path) -> list[str]:
        out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
        return sorted(" ".join(line.split()[:2] + line.split()[5:]) for line in out.splitlines())

    def fields(deb: Path) -> list[tuple[str, str]]:
        out = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
        return [tuple(line.split(": ", 1)) for line in out.splitlines()  # type: ignore[misc]
                if not line.startswith(" ") and not line.startswith("Installed-Size")]

    assert contents(our_debs["dbgsym"]) == contents(ref_dbgsym)
    assert fields(our_debs["dbgsym"]) == fields(ref_dbgsym)
    # `check` accepts what dh_dwz + dh_strip make (the package and its dbgsym root), and ours.
    for root, extra in ((staged, ["--debug-root", str(ref_root / "usr/lib/debug")]), (ours, [])):
        proc = run_cli("check", "--policy", "debian", *extra, "--format", "json", root)
        assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == [], proc.stdout[-3000:]
    shutil.rmtree(pkg)
