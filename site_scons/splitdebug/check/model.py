"""The staged tree as plain data: every directory, file and symlink by image path, never followed.

Symlinks are resolved inside the model with chroot semantics (an absolute target starts at ROOT, `..`
above ROOT is an escape), so nothing is ever followed out of the root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass



MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit

Key = tuple[int, int]  # (st_dev, st_ino): one file, whatever its names


@dataclass(frozen=True)
class Entry:
    kind: str  # dir, file, link, other
    fs_path: str
    target: str = ""  # a link's target, as written
    key: Key = (0, 0)
    mode: int = 0
    size: int = 0


@dataclass(frozen=True)
class Resolved:
    """Where an image path leads, links followed inside the model."""

    path: str | None  # final image path; None when it leads nowhere
    problem: str = ""  # missing, escape, loop, notdir
    detail: str = ""


@dataclass(frozen=True)
class TreeModel:
    entries: Mapping[str, Entry]
    debug_root: str  # the policy's debug root (image path)

    def in_debug_root(self, image: str) -> bool:
        return image == self.debug_root or image.startswith(self.debug_root.rstrip("/") + "/")

    def resolve(self, image: str, follow_last: bool = True) -> Resolved:
        """Follow links component by component (chroot semantics); never leaves the model."""
        done: list[str] = []
        todo = [p for p in reversed(image.split("/")) if p]
        hops = 0
        while todo:
            comp = todo.pop()
            if comp == ".":
                continue
            if comp == "..":
                if not done:
                    return Resolved(None, "escape", "climbs above the root")
                done.pop()
                continue
            here = "/" + "/".join([*done, comp])
            entry = self.entries.get(here)
            if entry is None:
                return Resolved(None, "missing", f"{here} does not exist")
            if entry.kind == "link" and (todo or follow_last):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return Resolved(None, "loop", "too many levels of symbolic links")
                if entry.target.startswith("/"):
                    done = []
                todo.extend(p for p in reversed(entry.target.split("/")) if p)
                continue
            if todo and entry.kind != "dir":
                return Resolved(None, "notdir", f"{here} is not a directory")
            done.append(comp)
        return Resolved("/" + "/".join(done))

    def file_at(self, image: str) -> tuple[Entry | None, Resolved]:
        """The regular file an image path leads to (through links), if any."""
        res = self.resolve(image)
        entry = self.entries.get(res.path) if res.path is not None else None
        return (entry if entry is not None and entry.kind == "file" else None), res
