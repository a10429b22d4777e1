"""layout's small tables and parsers against independent sources: dpkg-architecture's multiarch tuples,
uname -m's machine names, an os-release(5) text read as a shell would. Written for the survivors of
tests/MUTATION.md (layout.py:36, :48, :51, :83)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from splitdebug.layout import PackageInfo, multiarch_of, parse_os_release

# Debian architecture names and the machine names (uname -m) that run them.
DEBIAN_ARCH_OF_MACHINE = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "armv7l": "armhf",
                          "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}


def dpkg_multiarch(debian_arch: str) -> str:
    return subprocess.run(["dpkg-architecture", f"-a{debian_arch}", "-qDEB_HOST_MULTIARCH"], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("machine, debian_arch", sorted(DEBIAN_ARCH_OF_MACHINE.items()))
def test_multiarch_is_dpkgs(machine: str, debian_arch: str) -> None:
    """By either spelling, the tuple dpkg-architecture gives (dh_dwz's .dwz/<multiarch>/ directory)."""
    expected = dpkg_multiarch(debian_arch)
    assert multiarch_of(debian_arch) == expected
    assert multiarch_of(machine) == expected


@pytest.mark.parametrize("arch", ["s390x", "aarch64", "noarch", "i686"])
def test_with_defaults_keeps_a_given_arch(arch: str) -> None:
    """A given architecture is never replaced by this machine's."""
    assert PackageInfo("p", "1", "2", arch).with_defaults() == PackageInfo("p", "1", "2", arch)


def test_with_defaults_fills_in_the_machine() -> None:
    machine = subprocess.run(["uname", "-m"], check=True, capture_output=True, text=True).stdout.strip()
    assert PackageInfo("p").with_defaults().arch == machine


def test_parse_os_release_reads_as_a_shell_would() -> None:
    text = """# a comment
ID=debian
VERSION_ID="12"
PRETTY_NAME='Debian GNU/Linux 12 (bookworm)'
CPE_NAME="cpe:/o:debian:debian_linux:12"
EMPTY=
BROKEN="unterminated
#ID=ubuntu
"""
    assert parse_os_release(text) == {
        "ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "CPE_NAME": "cpe:/o:debian:debian_linux:12", "EMPTY": ""}


def test_every_documented_field_of_a_debug_file_template(tmp_path: Path) -> None:
    """Each field the schema lists for debug_file, expanded for one binary: a literal expectation."""
    from splitdebug.layout import place
    from splitdebug.policy import load_policy

    fields = ["arch", "build_id", "build_id_dir", "build_id_rest", "debug_root", "dir", "dup", "multiarch", "name",
              "package", "release", "version"]
    policy_file = tmp_path / "fields.yaml"
    text = (REPO / "configs/debian.yaml").read_text().replace("name: debian", "name: fields")
    template = "{debug_root}/" + "/".join(f"{f}={{{f}}}" for f in fields) + "/{path}.debug"
    policy_file.write_text(text.replace('debug_file: "{debug_root}/.build-id/{build_id_dir}/{build_id_rest}.debug"',
                                        f'debug_file: "{template}"'))
    got = place(load_policy(policy_file), "/usr/bin/prog", "abcdef", PackageInfo("demo", "1.0", "3", "s390x"),
                dup=2).debug_file
    assert got == ("/usr/lib/debug/arch=s390x/build_id=abcdef/build_id_dir=ab/build_id_rest=cdef/"
                   "debug_root=/usr/lib/debug/dir=/usr/bin/dup=.2/multiarch=s390x-linux-gnu/name=prog/"
                   "package=demo/release=3/version=1.0/usr/bin/prog.debug")


def test_fs_path_with_a_separate_debug_directory(tmp_path: Path) -> None:
    """Under the policy's debug_root an image path lands in the debug directory, elsewhere in the root;
    a name that only starts like the debug root (debugger) is the root's."""
    from splitdebug.layout import StageRoot
    from splitdebug.policy import load_policy

    root, debug = tmp_path / "root", tmp_path / "dbg"
    stage = StageRoot(root, debug_dir=debug)
    policy = load_policy("debian")
    assert stage.fs_path(policy, "/usr/lib/debug/.build-id/ab/cd.debug") == debug / ".build-id/ab/cd.debug"
    assert stage.fs_path(policy, "usr/lib/debug") == debug
    assert stage.fs_path(policy, "/usr/lib/debug/X11/x.debug") == debug / "X11/x.debug"
    assert stage.fs_path(policy, "/usr/lib/debugger/x") == root / "usr/lib/debugger/x"
    assert stage.fs_path(policy, "/usr/bin/../lib/libx.so") == root / "usr/lib/libx.so"
    assert StageRoot(root).fs_path(policy, "/usr/lib/debug/a.debug") == root / "usr/lib/debug/a.debug"


def test_image_path_of_the_root_is_slash(tmp_path: Path) -> None:
    from splitdebug.layout import StageRoot

    assert StageRoot(tmp_path).image_path(tmp_path) == "/"
    assert StageRoot(tmp_path).image_path(tmp_path / "usr/bin/prog") == "/usr/bin/prog"


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_infer_package_reads_redhat_names_of_files_that_are_there(tmp_path: Path) -> None:
    """find-debuginfo's <path>-<version>-<release>.<arch>.debug read back; a name whose binary is not in
    the tree does not count, however many there are."""
    from splitdebug.layout import StageRoot, infer_package
    from splitdebug.policy import load_policy

    touch(tmp_path / "usr/bin/prog")
    touch(tmp_path / "usr/lib/debug/usr/bin/prog-1.0-3.s390x.debug")
    for ghost in ("a", "b", "c"):
        touch(tmp_path / f"usr/lib/debug/usr/bin/{ghost}-9.9-9.x86_64.debug")
    assert infer_package(StageRoot(tmp_path), load_policy("redhat")) == (
        PackageInfo("", "1.0", "3", "s390x"), "/usr/lib/debug/usr/bin/prog-1.0-3.s390x.debug")


def test_infer_package_from_a_name_only_template(tmp_path: Path) -> None:
    """A template with {name} but no {dir}: the binary is looked for at the root."""
    from splitdebug.layout import StageRoot, infer_package
    from splitdebug.policy import load_policy

    policy_file = tmp_path / "named.yaml"
    text = (REPO / "configs/redhat.yaml").read_text().replace("name: redhat", "name: named")
    policy_file.write_text(text.replace('debug_file: "{debug_root}/{path}-{version}-{release}.{arch}.debug"',
                                        'debug_file: "{debug_root}/{name}-{version}-{release}.{arch}.debug"'))
    root = tmp_path / "root"
    touch(root / "prog")
    touch(root / "usr/lib/debug/prog-2.0-1.x86_64.debug")
    assert infer_package(StageRoot(root), load_policy(policy_file)) == (
        PackageInfo("", "2.0", "1", "x86_64"), "/usr/lib/debug/prog-2.0-1.x86_64.debug")


def test_symlink_debug_link_is_expected_whatever_the_mode(tmp_path: Path) -> None:
    """rpm's <link>.debug -> <target>.debug for a symlinked binary: a relative target, and expected of
    every binary (not only of those with an exec bit, as the compat build-id links are)."""
    from splitdebug.layout import Link, symlink_debug_link
    from splitdebug.policy import load_policy

    policy_file = tmp_path / "linked.yaml"
    text = (REPO / "configs/redhat.yaml").read_text().replace("name: redhat", "name: linked")
    policy_file.write_text(text.replace("symlinked_binaries: ignore", "symlinked_binaries: debug_link"))
    got = symlink_debug_link(load_policy(policy_file), "/usr/lib64/libx.so.1", "/usr/lib64/libx.so.1.2",
                             PackageInfo("x", "1.0", "3", "x86_64"))
    assert got == Link("/usr/lib/debug/usr/lib64/libx.so.1-1.0-3.x86_64.debug", "libx.so.1.2-1.0-3.x86_64.debug",
                       False)
