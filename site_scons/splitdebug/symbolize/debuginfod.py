"""A debuginfod client: `GET <url>/buildid/<id>/debuginfo` on each of DEBUGINFOD_URLS in turn, the
answer kept in a cache directory so that a second run asks no server (as libdebuginfod does)."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_TIMEOUT = 30  # seconds per server; DEBUGINFOD_TIMEOUT overrides, as for libdebuginfod


def server_urls() -> tuple[str, ...]:
    return tuple(u.rstrip("/") for u in os.environ.get("DEBUGINFOD_URLS", "").split() if u)


def fetch_debuginfo(build_id: str, urls: tuple[str, ...], cache_dir: Path) -> tuple[Path | None, str]:
    """(the cached debug file, "") or (None, why not)."""
    if not urls:
        return None, "DEBUGINFOD_URLS is not set"
    target = cache_dir / build_id / "debuginfo"
    if target.is_file():
        return target, ""
    try:
        timeout = float(os.environ.get("DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    reasons = []
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url}/buildid/{build_id}/debuginfo", timeout=timeout) as resp:
                data = resp.read()
        except urllib.error.HTTPError as err:
            reasons.append(f"{url}: HTTP {err.code}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as err:
            reasons.append(f"{url}: {getattr(err, 'reason', None) or err}")
            continue
        try:  # whole or not at all: another run may read the cache at the same time
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".debuginfo.", dir=target.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except OSError as err:
            return None, f"cannot write the debuginfod cache {cache_dir}: {err.strerror}"
        return target, ""
    return None, "debuginfod: " + "; ".join(reasons)
