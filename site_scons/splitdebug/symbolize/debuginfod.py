"""A debuginfod client: `GET <url>/buildid/<id>/debuginfo` on each of DEBUGINFOD_URLS in turn, the
answer kept in a cache directory so that a second run asks no server (as libdebuginfod does).

A server's answer is streamed to a temporary file beside the cache entry and bounded: no more than
DEBUGINFOD_MAXSIZE bytes (libdebuginfod's variable; 4 GiB here when unset), so that a hostile or
broken server can fill neither memory nor the disk."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

DEFAULT_TIMEOUT = 30  # seconds per server; DEBUGINFOD_TIMEOUT overrides, as for libdebuginfod
DEFAULT_MAXSIZE = 4 << 30  # bytes; DEBUGINFOD_MAXSIZE overrides
CHUNK = 1 << 20


class TooLarge(Exception):
    pass


def server_urls() -> tuple[str, ...]:
    return tuple(u.rstrip("/") for u in os.environ.get("DEBUGINFOD_URLS", "").split() if u)


def fetch_debuginfo(build_id: str, urls: tuple[str, ...], cache_dir: Path) -> tuple[Path | None, str]:
    """(the cached debug file, "") or (None, why not)."""
    if not urls:
        return None, "DEBUGINFOD_URLS is not set"
    target = cache_dir / build_id / "debuginfo"
    if target.is_file():
        return target, ""
    timeout = _env_number("DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT)
    limit = int(_env_number("DEBUGINFOD_MAXSIZE", DEFAULT_MAXSIZE)) or DEFAULT_MAXSIZE  # 0: no limit asked
    reasons = []
    for url in urls:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".debuginfo.", dir=target.parent)
        except OSError as err:
            return None, f"cannot write the debuginfod cache {cache_dir}: {err.strerror}"
        try:
            with os.fdopen(fd, "wb") as f:
                _download(f"{url}/buildid/{build_id}/debuginfo", f, timeout, limit)
            os.replace(tmp, target)  # whole or not at all: another run may read the cache at the same time
            return target, ""
        except urllib.error.HTTPError as err:
            reasons.append(f"{url}: HTTP {err.code}")
        except TooLarge as err:
            reasons.append(f"{url}: {err}")
        except (urllib.error.URLError, ValueError) as err:
            reasons.append(f"{url}: {getattr(err, 'reason', None) or err}")
        except OSError as err:
            reasons.append(f"{url}: {err.strerror or err}")
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    return None, "debuginfod: " + "; ".join(reasons)


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _download(url: str, out: BinaryIO, timeout: float, limit: int) -> None:
    """The body of `url` into `out`, refused past `limit` bytes (by Content-Length before reading)."""
    request = urllib.request.Request(url, headers={"X-DEBUGINFOD-MAXSIZE": str(limit)})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise TooLarge(f"{length} bytes, more than DEBUGINFOD_MAXSIZE={limit}")
        total = 0
        while chunk := resp.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"more than DEBUGINFOD_MAXSIZE={limit} bytes")
            out.write(chunk)
