"""One error type for everything a user can get wrong; its message is a single line."""

from __future__ import annotations


class SplitDebugError(Exception):
    """Base error: str(err) is the whole one-line message shown to the user."""


class PolicyError(SplitDebugError):
    """A policy file that cannot be loaded: names the file, the line and the key."""

    def __init__(self, path: str, line: int | None, key: str | None, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        what = f" key {key!r}:" if key else ""
        super().__init__(f"{where}:{what} {reason}")
        self.path, self.line, self.key, self.reason = path, line, key, reason

    def __reduce__(self) -> tuple[type[PolicyError], tuple[str, int | None, str | None, str]]:
        return type(self), (self.path, self.line, self.key, self.reason)  # crosses process pools


class ElfError(SplitDebugError):
    """A file that looks like ELF but cannot be read as one (truncated, corrupt)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type[ElfError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


class ToolError(SplitDebugError):
    """An external tool (objcopy, eu-strip, xz…) failed; carries its stderr."""

    def __init__(self, path: str, argv: list[str], stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
        super().__init__(f"{path}: {argv[0]} failed: {last}")
        self.path, self.argv, self.stderr = path, argv, stderr

    def __reduce__(self) -> tuple[type[ToolError], tuple[str, list[str], str]]:
        return type(self), (self.path, self.argv, self.stderr)


def printable(text: str) -> str:
    """One printable line: undecodable bytes of file names as \\xNN, control characters escaped.

    File names may hold newlines or bytes that are not UTF-8; a message must stay one line and
    printing it must never raise.
    """
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in raw)
