"""Linker flags that stamp the ELF package metadata note (https://systemd.io/ELF_PACKAGE_METADATA/).

ld >= 2.39 (and gold, lld, mold) take `--package-metadata=JSON`. An older GNU ld gets the note as a
linker script instead, as systemd's package-notes did before that option (generate-package-notes.py):
a `.note.package` output section spelled in LONG/BYTE statements, inserted after the build-id note
and given with `-Wl,-dT,FILE`. LONG is in the target's byte order, so the script suits any target.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import tempfile

NOTE_TYPE = 0xCAFE1A7E  # FDO_PACKAGING_METADATA
OWNER = b"FDO\0"


def _run(link: str, flag: str) -> str:
    words = shlex.split(link) or ["cc"]
    try:
        return subprocess.run([*words, flag], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


@functools.cache  # one probe per driver command and process
def has_package_metadata(link: str) -> bool:
    """Whether the linker of `link` (a compiler driver command, e.g. "gcc") takes --package-metadata."""
    return "--package-metadata" in _run(link, "-Wl,--help")


@functools.cache  # asked only when a script is written
def has_readonly(link: str) -> bool:
    """Whether the linker knows the READONLY section keyword (GNU ld >= 2.38; other linkers: assumed)."""
    found = re.search(r"GNU ld .*?(\d+)\.(\d+)", _run(link, "-Wl,--version"))
    return found is None or (int(found[1]), int(found[2])) >= (2, 38)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def linker_script(note: str, readonly: bool = True) -> str:
    """A linker script adding the note `note` (compact JSON) as `.note.package`, after the build-id.

    Without READONLY (ld < 2.38) the section comes out writable, as generate-package-notes.py's did."""
    # The descriptor's size counts its NUL padding, as ld's --package-metadata writes it, so both
    # ways give the same note (generate-package-notes.py counted one NUL only).
    desc = _pad(note.encode("utf-8") + b"\0")
    lines = ["SECTIONS", "{", f"    .note.package {'(READONLY) ' if readonly else ''}: ALIGN(4) {{",
             f"        LONG({len(OWNER):#x}) /* owner size, NUL included */",
             f"        LONG({len(desc):#x}) /* descriptor size, NUL padding included */",
             f"        LONG({NOTE_TYPE:#x}) /* FDO_PACKAGING_METADATA */"]
    for name, data in (("owner", OWNER), ("descriptor", desc)):
        padded = _pad(data)
        for at in range(0, len(padded), 8):
            words = " ".join(f"BYTE({b:#04x})" for b in padded[at:at + 8])
            lines.append(f"        {words}" + (f" /* {name} */" if at == 0 else ""))
    # The JSON is not written out as text: a */ in a value would end the comment.
    lines += ["    }", "}", "INSERT AFTER .note.gnu.build-id;", ""]
    return "\n".join(lines)


def option_flags(note: str) -> list[str]:
    """The driver flags for ld's own option: -Xlinker, not -Wl, since the JSON has commas."""
    return ["-Xlinker", f"--package-metadata={note}"]


def script_flags(script: str) -> list[str]:
    if "," in script:  # -Wl splits its argument at commas
        return ["-Xlinker", "-dT", "-Xlinker", script]
    return [f"-Wl,-dT,{script}"]


def write_script(path: str, text: str) -> None:
    """Write the script atomically (temp file beside it, then rename), unchanged files left alone so
    that a build does not relink for nothing."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except (OSError, UnicodeDecodeError):
        pass
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".splitdebug-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
