"""Output formats. text: the log line as it was, then one indented line per frame, innermost first
(`function at file:line:column`, `(inlined)` for frames inlined into the next, the source in
brackets, with `; package NAME VERSION` when the module's .note.package names one); json: one object
per frame, one per line, `"version": 1`, with `package` and `package_version` (null when unknown)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .index import Frame
from .inputs import Request


@dataclass(frozen=True)
class Answer:
    """What is known of one request."""

    request: Request
    module: str
    build_id: str | None
    vaddr: int | None
    frames: tuple[Frame, ...]
    source: str  # dwarf, minidebuginfo, dynsym, none
    reason: str = ""
    package: tuple[str, str] | None = None  # (name, version) from the module's .note.package


def location(frame: Frame) -> str:
    if not frame.file:
        return "??:0"
    return f"{frame.file}:{frame.line}" + (f":{frame.column}" if frame.column else "")


def _package(answer: Answer) -> str:
    if answer.package is None:
        return ""
    name, version = answer.package
    return f"; package {name} {version}".rstrip()


def text(answer: Answer) -> list[str]:
    if not answer.frames:
        why = f": {answer.reason}" if answer.reason else ""
        return [f"    ?? [{answer.source}{why}{_package(answer)}]"]
    out = []
    for frame in answer.frames:
        inlined = " (inlined)" if frame.inlined else ""
        out.append(f"    {frame.function or '??'} at {location(frame)}{inlined} [{answer.source}{_package(answer)}]")
    return out


def json_lines(answer: Answer, line_number: int) -> list[str]:
    common = {"version": 1, "input_line": line_number, "address": hex(answer.request.address),
              "module": answer.module, "build_id": answer.build_id,
              "vaddr": hex(answer.vaddr) if answer.vaddr is not None else None, "source": answer.source,
              "package": answer.package[0] if answer.package else None,
              "package_version": answer.package[1] if answer.package else None}
    if answer.reason:
        common["reason"] = answer.reason
    if not answer.frames:
        return [json.dumps({**common, "function": None, "file": None, "line": 0, "column": 0, "inlined": False})]
    return [json.dumps({**common, "function": f.function, "file": f.file, "line": f.line, "column": f.column,
                        "inlined": f.inlined}) for f in answer.frames]
