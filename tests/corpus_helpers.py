"""The real sources the package-build tests use: Debian's source packages, fetched by
../shared/corpus/fetch.sh into SPLITDEBUG_CORPUS (default ../corpus), once, on first use."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO

CORPUS = Path(os.environ.get("SPLITDEBUG_CORPUS", str(REPO.parent / "corpus")))
FETCH = REPO.parent / "shared/corpus/fetch.sh"


def fetch(pkg: str, debian: bool = False) -> Path:
    """CORPUS, with `pkg`'s upstream tarball (and its unpacked Debian source package when `debian`).

    apt's downloads run as the unprivileged `_apt` user; in a CI sandbox where only root may open
    /dev/null, apt-key then finds no gpgv and every index is "not signed". The fetch is ours and runs as
    root anyway, so it tells apt not to drop privileges (APT::Sandbox::User) unless the caller set an
    APT_CONFIG of its own. A fetch that fails is a test failure with apt's reason, never a skip."""
    wanted = CORPUS / (f"deb-{pkg}" if debian else f"src-{pkg}")
    if wanted.is_dir():
        return CORPUS
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as conf:
        conf.write('APT::Sandbox::User "root";\n')
    env = dict(os.environ, PKGS=pkg, DEBIAN="1" if debian else "0")
    env.setdefault("APT_CONFIG", conf.name)
    try:
        proc = subprocess.run(["sh", str(FETCH), str(CORPUS)], env=env, capture_output=True, text=True)
    finally:
        os.unlink(conf.name)
    # Judged by what it left, not its status: fetch.sh ends with an `ls` of src-* and deb-* that exits 2
    # when there is no deb-* at all.
    if not wanted.is_dir():
        pytest.fail(f"{FETCH} could not fetch {pkg} into {CORPUS} (exit {proc.returncode}): "
                    f"{proc.stderr.strip()[-1500:]}")
    return CORPUS
