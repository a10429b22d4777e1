"""The command line's own behaviour: subcommands imported only when run, their summaries in step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SITE_SCONS, env_with_package, make_tree, run_cli
from splitdebug import cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_summary_is_the_module_docstring(name: str) -> None:
    module = cli.subcommand(name)
    assert (module.__doc__ or "").splitlines()[0] == cli.SUBCOMMANDS[name][1]


def test_split_imports_neither_checker_nor_packagers() -> None:
    """A split is the hot path (one process per package build): it must not import what it does not run."""
    code = ("import sys; from splitdebug import cli; cli.build_parser(['split']); "
            "print(sorted(m for m in sys.modules if m.startswith('splitdebug.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SITE_SCONS), "PATH": "/usr/bin:/bin"}).stdout
    assert "splitdebug.cli.split" in out
    for heavy in ("splitdebug.cli.check", "splitdebug.check", "splitdebug.cli.package", "splitdebug.package",
                  "splitdebug.cli.exports", "splitdebug.exports"):
        assert heavy not in out, heavy


def test_top_level_help_lists_every_subcommand() -> None:
    proc = subprocess.run([sys.executable, "-m", "splitdebug", "--help"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SITE_SCONS), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    for name, (_, summary) in cli.SUBCOMMANDS.items():
        assert name in proc.stdout and summary.split()[0] in proc.stdout


def test_unknown_engine_is_a_one_line_usage_error(tmp_path: Path) -> None:
    env = env_with_package()
    env["SPLITDEBUG_ENGINE"] = "fast"
    proc = run_cli("split", "--policy", "debian", make_tree(tmp_path / "root").root, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "splitdebug: error: SPLITDEBUG_ENGINE=fast: expected one of builtin, tools"
