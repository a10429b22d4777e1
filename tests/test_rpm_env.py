"""rpmbuild's environment (RPM_BUILD_ROOT, RPM_PACKAGE_*, RPM_ARCH, RPM_BUILD_NCPUS) stands for the
options `split` and `check` were not given; flags win. `check --policy redhat ROOT` with neither reads
version-release.arch back from the tree's debug file names and says so."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import env_with_package, make_tree, run_cli

RPM_VARS = ("RPM_BUILD_ROOT", "RPM_PACKAGE_NAME", "RPM_PACKAGE_VERSION", "RPM_PACKAGE_RELEASE", "RPM_ARCH",
            "RPM_BUILD_NCPUS")


def rpm_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in env_with_package().items() if k not in RPM_VARS}
    env.update(values)
    return env


def scriptlet_env(root: Path, **extra: str) -> dict[str, str]:
    values = {"RPM_BUILD_ROOT": str(root), "RPM_PACKAGE_NAME": "demo", "RPM_PACKAGE_VERSION": "2.5",
              "RPM_PACKAGE_RELEASE": "7.fc39", "RPM_ARCH": "x86_64", "RPM_BUILD_NCPUS": "2"}
    return rpm_env(**{**values, **extra})


def debug_names(root: Path) -> set[str]:
    top = root / "usr/lib/debug"
    return {"/" + p.relative_to(top).as_posix() for p in top.rglob("*.debug")
            if ".build-id" not in p.parts and ".dwz" not in p.parts}


def test_split_reads_rpms_environment(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root").root
    proc = run_cli("split", "--policy", "redhat", "-q", env=scriptlet_env(root))  # no ROOT, no flags
    assert proc.returncode == 0, proc.stderr
    assert debug_names(root) == {"/usr/bin/prog-2.5-7.fc39.x86_64.debug",
                                 "/usr/bin/prog-alias-2.5-7.fc39.x86_64.debug",
                                 "/usr/lib/libdemo.so.1.0-2.5-7.fc39.x86_64.debug"}
    assert (root / "usr/lib/debug/.dwz/demo-2.5-7.fc39.x86_64").is_file()  # {package} from RPM_PACKAGE_NAME
    check = run_cli("check", "--policy", "redhat", env=scriptlet_env(root))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "read from the debug file" not in check.stderr  # nothing was guessed


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root").root
    other = tmp_path / "elsewhere"
    other.mkdir()
    proc = run_cli("split", "--policy", "redhat", "-q", "--version", "3.0", "--release", "1", "--jobs", "1",
                   root, env=scriptlet_env(other, RPM_BUILD_NCPUS="many"))
    assert proc.returncode == 0, proc.stderr
    assert "/usr/bin/prog-3.0-1.x86_64.debug" in debug_names(root)
    assert not any(other.iterdir())
    # check: the flag's release is not the tree's: the debug files are not where it looks.
    check = run_cli("check", "--policy", "redhat", "--release", "2", root, env=scriptlet_env(other))
    assert check.returncode == 1 and "SD303" in check.stdout


def test_rpm_build_ncpus_is_read(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root").root
    for cmd in ("split", "check"):
        proc = run_cli(cmd, "--policy", "redhat", env=scriptlet_env(root, RPM_BUILD_NCPUS="many"))
        assert proc.returncode == 2 and proc.stderr == "splitdebug: error: RPM_BUILD_NCPUS='many': not a number\n"
        proc = run_cli(cmd, "--policy", "redhat", env=scriptlet_env(root, RPM_BUILD_NCPUS="0"))
        assert proc.returncode == 2 and proc.stderr == "splitdebug: error: RPM_BUILD_NCPUS 0: give at least 1\n"
    assert not (root / "usr/lib/debug").exists()


def test_no_root_and_no_rpm_build_root_is_one_line(tmp_path: Path) -> None:
    for cmd in ("split", "check"):
        proc = run_cli(cmd, "--policy", "redhat", "--version", "1", "--release", "1", env=rpm_env(), cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr == "splitdebug: error: no ROOT given, and RPM_BUILD_ROOT is not set\n"
    missing = tmp_path / "gone"
    proc = run_cli("split", "--policy", "redhat", env=scriptlet_env(missing))
    assert proc.returncode == 2 and proc.stderr == f"splitdebug: error: {missing}: not a directory\n"


def test_check_reads_version_release_arch_from_the_tree(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root").root
    assert run_cli("split", "--policy", "redhat", "-q", env=scriptlet_env(root)).returncode == 0
    proc = run_cli("check", "--policy", "redhat", root, env=rpm_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ("splitdebug: check: version=2.5 release=7.fc39 arch=x86_64, read from the debug file "
                           "/usr/lib/debug/usr/bin/prog-2.5-7.fc39.x86_64.debug\n")
    assert "0 errors" in proc.stdout
    # A debug file whose <path> is no file of the tree is not a reading of the package.
    stray = root / "usr/lib/debug/usr/bin/gone-9-9.x86_64.debug"
    os.link(root / "usr/lib/debug/usr/bin/prog-2.5-7.fc39.x86_64.debug", stray)
    proc = run_cli("check", "--policy", "redhat", root, env=rpm_env())
    assert "version=2.5 release=7.fc39" in proc.stderr


def test_check_without_debug_files_still_asks_for_the_flags(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root").root
    proc = run_cli("check", "--policy", "redhat", root, env=rpm_env())
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "give --release --version" in proc.stderr
