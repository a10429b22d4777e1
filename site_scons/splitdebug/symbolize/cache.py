"""The on-disk index cache: one pickle per (build-id, source) under $XDG_CACHE_HOME/splitdebug/symbolize,
written atomically; an entry of another index version, or one that does not load, is rebuilt."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

from .index import INDEX_VERSION, AddressIndex


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "splitdebug"


def _entry(cache_dir: Path, build_id: str, source: str) -> Path:
    return cache_dir / "symbolize" / f"v{INDEX_VERSION}" / build_id[:2] / f"{build_id[2:]}.{source}.pickle"


SOURCES = ("dwarf", "minidebuginfo", "dynsym")


def exists(cache_dir: Path | None, build_id: str, source: str) -> bool:
    return cache_dir is not None and _entry(cache_dir, build_id, source).is_file()


def load(cache_dir: Path | None, build_id: str | None, source: str) -> AddressIndex | None:
    if cache_dir is None or not build_id:
        return None
    try:
        with open(_entry(cache_dir, build_id, source), "rb") as f:
            index = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return index if isinstance(index, AddressIndex) and index.version == INDEX_VERSION else None


def store(cache_dir: Path | None, build_id: str | None, source: str, index: AddressIndex) -> None:
    """Best effort: a cache that cannot be written only costs the next run the DWARF parse."""
    if cache_dir is None or not build_id:
        return
    path = _entry(cache_dir, build_id, source)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".index.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(index, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        return
