"""ELF package metadata (.note.package, https://systemd.io/ELF_PACKAGE_METADATA/): a policy's
package_note makes the SCons tool link it into every binary, readelf shows it, and `check` wants it
(SD205 when missing, SD206 when it is not the JSON the policy names)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli, run_scons
from splitdebug import layout
from splitdebug.layout import PackageInfo
from splitdebug.policy import load_policy

NOTE = """
package_note:
  type: rpm
  name: "{package}"
  version: "{version}-{release}"
  architecture: "{arch}"
  os: "{os_id}"
  osVersion: "{os_version_id}"
  debugInfoUrl: https://debuginfod.example.org/
"""
OS_RELEASE = 'NAME="Demo Linux"\nID=demo\nVERSION_ID="4.2"\nCPE_NAME="cpe:/o:demo:demo:4.2"\n'
SCONSTRUCT = """
env = Environment(tools=["default", "splitdebug"], SPLITDEBUG_POLICY=ARGUMENTS.get("POLICY", "{policy}"),
                  SPLITDEBUG_OS_RELEASE="{os_release}", DESTDIR="#stage",
                  PACKAGE_NAME="demo", PACKAGE_VERSION="1.0", PACKAGE_RELEASE="3", PACKAGE_ARCH="x86_64")
prog = env.Program("prog", ["prog.c"])
lib = env.SharedLibrary("demo", ["lib.c"])
env.InstallStripped("$DESTDIR/usr/bin", prog)
env.InstallStripped("$DESTDIR/usr/lib64", lib)
Default("stage")
"""
WANT = {"type": "rpm", "name": "demo", "version": "1.0-3", "architecture": "x86_64", "os": "demo",
        "osVersion": "4.2", "debugInfoUrl": "https://debuginfod.example.org/"}
CHECK_ARGS = ("--package", "demo", "--version", "1.0", "--release", "3", "--arch", "x86_64")


def ld_has_package_metadata() -> bool:
    return "--package-metadata" in subprocess.run(["ld", "--help"], capture_output=True, text=True).stdout


def redhat_without_note() -> str:
    """configs/redhat.yaml less its package_note and package_note_required (Fedora's note)."""
    text = (REPO / "configs/redhat.yaml").read_text()
    text = re.sub(r"^package_note:\n(?:  .*\n)+", "", text, flags=re.M)
    out = re.sub(r"^package_note_required: .*\n", "", text, flags=re.M)
    assert "package_note" not in re.sub(r"#.*", "", out)
    return out


def policy_with_note(tmp_path: Path) -> Path:
    path = tmp_path / "noted.yaml"
    path.write_text(redhat_without_note().replace("name: redhat", "name: noted") + NOTE)
    return path


def policy_without_note(tmp_path: Path) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text(redhat_without_note().replace("name: redhat", "name: plain"))
    return path


def readelf_notes(path: Path) -> str:
    return subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout


def test_policy_note_json_from_package_fields_and_os_release(tmp_path: Path) -> None:
    policy = load_policy(policy_with_note(tmp_path))
    text = layout.package_note(policy, PackageInfo("demo", "1.0", "3", "x86_64"), layout.parse_os_release(OS_RELEASE))
    assert text is not None and json.loads(text) == WANT and " " not in text  # compact, in the policy's order
    assert list(json.loads(text)) == list(WANT)
    assert layout.package_note(load_policy(policy_without_note(tmp_path)), PackageInfo("demo"), {}) is None


def test_redhat_stamps_fedoras_note_and_only_warns_without_it(tmp_path: Path) -> None:
    """configs/redhat.yaml: the JSON of Fedora's redhat-package-notes spec (systemd/package-notes' rpm/),
    and package_note_required false, since a Fedora package may opt out."""
    policy = load_policy("redhat")
    text = layout.package_note(policy, PackageInfo("demo", "1.0", "3", "x86_64"), layout.parse_os_release(OS_RELEASE))
    assert text == ('{"type":"rpm","name":"demo","version":"1.0-3","architecture":"x86_64",'
                    '"osCpe":"cpe:/o:demo:demo:4.2"}')
    assert not policy.package_note_required and load_policy(policy_with_note(tmp_path)).package_note_required


@pytest.mark.parametrize(("note", "reason"), [
    ("package_note: {name: x}\n", "the note needs at least 'type' and 'name'"),
    ("package_note: {type: rpm, name: '{pkg}'}\n", "unknown template field {pkg}"),
    ("package_note: [rpm]\n", "expected a mapping of JSON key to value template, or null"),
])
def test_bad_package_note_is_one_line_with_file_and_line(tmp_path: Path, note: str, reason: str) -> None:
    bad = tmp_path / "bad.yaml"
    text = redhat_without_note()
    bad.write_text(text + note)
    proc = run_cli("policy", "validate", bad)
    line = text.count("\n") + 1
    assert proc.returncode == 1 and proc.stderr.startswith(f"{bad}:{line}: key 'package_note") and reason in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.skipif(not ld_has_package_metadata(), reason="ld without --package-metadata (binutils < 2.39)")
def test_scons_links_the_note_readelf_shows_it_and_check_wants_it(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE)
    (proj / "SConstruct").write_text(SCONSTRUCT.format(policy=policy_with_note(tmp_path), os_release=os_release))
    (proj / "prog.c").write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    (proj / "lib.c").write_text('__attribute__((visibility("default"))) int demo(int x) { return x + 1; }\n')
    run_scons(proj, "-Q")
    stage = proj / "stage"
    for binary in (stage / "usr/bin/prog", stage / "usr/lib64/libdemo.so"):
        out = readelf_notes(binary)
        assert re.search(r"FDO\s+0x[0-9a-f]+\s+FDO_PACKAGING_METADATA", out), out
        shown = re.search(r"Packaging Metadata: (\{.*\})", out)
        assert shown is not None and json.loads(shown.group(1)) == WANT, out
    noted = policy_with_note(tmp_path)
    proc = run_cli("check", "--policy", noted, *CHECK_ARGS, stage)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_scons(proj, "-q", check=False).returncode == 0  # up to date: the note's flags are stable

    # Built under a policy without a note: check under the noted policy finds it missing; under
    # redhat, whose note a package may opt out of, that is a warning (exit 0).
    run_scons(proj, "-Q", f"POLICY={policy_without_note(tmp_path)}")
    proc = run_cli("check", "--policy", noted, *CHECK_ARGS, stage)
    assert proc.returncode == 1 and "error SD205 package-note-missing /usr/bin/prog:" in proc.stdout, proc.stdout
    assert "FDO" not in readelf_notes(stage / "usr/bin/prog")
    proc = run_cli("check", "--policy", "redhat", *CHECK_ARGS, stage)
    assert proc.returncode == 0 and "warning SD207 package-note-absent /usr/bin/prog:" in proc.stdout, proc.stdout

    # Built under redhat itself: Fedora's note, and check passes it.
    run_scons(proj, "-Q", "POLICY=redhat")
    shown = re.search(r"Packaging Metadata: (\{.*\})", readelf_notes(stage / "usr/bin/prog"))
    assert shown is not None and json.loads(shown.group(1))["osCpe"] == "cpe:/o:demo:demo:4.2"
    proc = run_cli("check", "--policy", "redhat", *CHECK_ARGS, stage)
    assert proc.returncode == 0 and "SD20" not in proc.stdout, proc.stdout

    # A note that is not the policy's JSON: same length, so the ELF stays well-formed.
    run_scons(proj, "-Q")
    prog = stage / "usr/bin/prog"
    data = prog.read_bytes()
    good = json.dumps(WANT, separators=(",", ":")).encode()
    assert data.count(good) == 1
    prog.write_bytes(data.replace(good, good.replace(b'"osVersion"', b'"osVersioX"').replace(b"}", b"!")))
    proc = run_cli("check", "--policy", noted, *CHECK_ARGS, stage)
    assert proc.returncode == 1 and "error SD206 package-note-invalid /usr/bin/prog: package metadata note is " \
        "not JSON" in proc.stdout, proc.stdout
    prog.write_bytes(data.replace(good, good.replace(b'"osVersion"', b'"osVersioX"')))
    proc = run_cli("check", "--policy", noted, *CHECK_ARGS, stage)
    assert "error SD206 package-note-invalid /usr/bin/prog: package metadata note lacks osVersion" in proc.stdout


def _note_section(binary: Path, out: Path) -> bytes:
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.note.package", str(binary), str(out)], check=True)
    return out.read_bytes()


@pytest.mark.skipif(not ld_has_package_metadata(), reason="ld without --package-metadata (binutils < 2.39)")
def test_print_ldflags_in_a_makefile_and_as_a_linker_script(tmp_path: Path) -> None:
    """`splitdebug package-note --print-ldflags` gives a Makefile ld's option, and with --script a linker
    script (the fallback for ld < 2.39, forced here): both notes are byte for byte what ld makes."""
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE)
    (tmp_path / "prog.c").write_text("int main(void) { return 0; }\n")
    args = f"--policy {policy_with_note(tmp_path)} --package demo --version 1.0 --release 3 --arch x86_64 " \
           f"--os-release {os_release}"
    cli = f"PYTHONPATH={REPO / 'site_scons'} {sys.executable} -m splitdebug package-note --print-ldflags {args}"
    (tmp_path / "Makefile").write_text(
        f"LDFLAGS += $(shell {cli})\nSCRIPTFLAGS := $(shell {cli} --script {tmp_path / 'note.ld'})\n"
        "all: opt scripted\n"
        "opt: prog.c\n\tcc -Wl,--build-id $(LDFLAGS) -o $@ $<\n"
        "scripted: prog.c\n\tcc -Wl,--build-id $(SCRIPTFLAGS) -o $@ $<\n")
    proc = subprocess.run(["make", "-C", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "package-metadata" not in (tmp_path / "note.ld").read_text()
    for name in ("opt", "scripted"):
        shown = re.search(r"Packaging Metadata: (\{.*\})", readelf_notes(tmp_path / name))
        assert shown is not None and json.loads(shown.group(1)) == WANT, name
    assert _note_section(tmp_path / "scripted", tmp_path / "a") == _note_section(tmp_path / "opt", tmp_path / "b")
    sections = subprocess.run(["readelf", "-SW", str(tmp_path / "scripted")], capture_output=True, text=True).stdout
    assert re.search(r"\.note\.package\s+NOTE\s+\S+\s+\S+\s+\S+\s+00\s+A ", sections), sections  # read-only
    proc = run_cli("package-note", "--print-ldflags", "--policy", "debian")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "has no package_note" in proc.stderr


def test_scons_falls_back_to_a_linker_script_target(tmp_path: Path) -> None:
    """SPLITDEBUG_PACKAGENOTE_METHOD="script" (what an ld without --package-metadata gets): the note
    comes from a generated linker script, a real target; readelf shows it, check passes, up to date."""
    proj = tmp_path / "proj"
    proj.mkdir()
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE)
    sconstruct = SCONSTRUCT.format(policy=policy_with_note(tmp_path), os_release=os_release)
    (proj / "SConstruct").write_text(sconstruct.replace('PACKAGE_ARCH="x86_64"',
                                                        'PACKAGE_ARCH="x86_64", SPLITDEBUG_PACKAGENOTE_METHOD="script"'))
    (proj / "prog.c").write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    (proj / "lib.c").write_text('__attribute__((visibility("default"))) int demo(int x) { return x + 1; }\n')
    proc = run_scons(proj, "-Q")
    assert "package-metadata" not in proc.stdout and "-dT" in proc.stdout, proc.stdout
    assert len(list((proj / ".splitdebug").glob("package-note-*.ld"))) == 1
    for binary in (proj / "stage/usr/bin/prog", proj / "stage/usr/lib64/libdemo.so"):
        shown = re.search(r"Packaging Metadata: (\{.*\})", readelf_notes(binary))
        assert shown is not None and json.loads(shown.group(1)) == WANT, binary
    proc = run_cli("check", "--policy", policy_with_note(tmp_path), *CHECK_ARGS, proj / "stage")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_scons(proj, "-q", check=False).returncode == 0
