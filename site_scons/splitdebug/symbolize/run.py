"""The symbolizer as a library: lines in, lines out (a log filter), or one address at a time."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from collections.abc import Callable, Iterable, Iterator

from . import cache
from .core import core_requests
from .index import Frame
from .inputs import ParseState, Request, parse_line
from .lookup import Module, Options, Resolver
from .output import Answer, json_lines, text
from .parallel import share, usable_cores


def _stderr_warning(message: str) -> None:
    print(f"splitdebug: warning: {message}", file=sys.stderr)


class Symbolizer:
    """Keeps each module's index for the whole run; warnings go to `warn`, once each."""

    def __init__(self, options: Options | None = None, warn: Callable[[str], None] = _stderr_warning,
                 resolver: Resolver | None = None) -> None:
        self.resolver = resolver or Resolver(options or Options(), warn)
        self.state = ParseState()

    def answer(self, request: Request) -> Answer:
        if request.kind == "unmapped":
            return Answer(request, "??", None, None, (), "none", "no markup mmap covers this address")
        module = self.resolver.module(request.build_id, request.path)
        return replace(self._answer(request, module), package=module.package)

    def _answer(self, request: Request, module: Module) -> Answer:
        if module.index is None:
            return Answer(request, module.label, module.build_id, None, (), "none", module.reason)
        vaddr = self._vaddr(request, module)
        if vaddr is None:
            return Answer(request, module.label, module.build_id, None, (), module.source,
                          f"no symbol {request.symbol} in {module.label}")
        look = vaddr - 1 if request.return_address and vaddr > 0 else vaddr
        source = module.source
        frames: tuple[Frame, ...] = tuple(module.index.lookup(look))
        fallback = module.fallback() if not frames else None
        if fallback is not None:  # code the first source does not cover
            frames = tuple(fallback.lookup(look))
            source = "dynsym" if frames else source
        reason = module.reason if frames else (module.reason or f"nothing at {vaddr:#x} in {module.source}")
        return Answer(request, module.label, module.build_id, vaddr, frames, source, reason)

    @staticmethod
    def _vaddr(request: Request, module: Module) -> int | None:
        assert module.index is not None
        if request.kind == "offset":
            return module.index.vaddr_of_offset(request.value)
        if request.kind == "symbol":
            for index in (module.index, module.fallback()):
                start = index.symbol_address(request.symbol or "") if index is not None else None
                if start is not None:
                    return start + request.value
            return None
        return request.value

    def lines(self, lines: Iterable[str], fmt: str = "text", read_ahead: bool = False) -> Iterator[str]:
        """Each input line (text: echoed, followed by its frames; json: only the frames). With
        `read_ahead` (a log file, not a live pipe) every line is read first and the modules' indexes
        are filled on all cores before the first answer."""
        parsed: Iterable[tuple[str, list[Request] | None]]
        parsed = ((line, parse_line(line, self.state)) for line in (raw.rstrip("\n") for raw in lines))
        try:
            if read_ahead:
                parsed = list(parsed)
                self.prefetch([r for _, requests in parsed for r in requests or ()])
            for number, (line, requests) in enumerate(parsed, 1):
                if fmt == "text":
                    yield line
                for request in requests or ():
                    answer = self.answer(request)
                    yield from (text(answer) if fmt == "text" else json_lines(answer, number))
        finally:
            self.resolver.flush()  # the units filled this run, for the next one

    def prefetch(self, requests: Iterable[Request], jobs: int | None = None) -> None:
        """Fill the index of every module the requests name that the cache does not hold yet, on
        `jobs` cores (default: all usable); the answers come later, from memory or the cache."""
        cache_dir = self.resolver.options.cache_dir
        groups: dict[tuple[str | None, str | None], list[Request]] = {}
        for r in requests:
            if r.kind != "unmapped":
                groups.setdefault((r.build_id, r.path), []).append(r)
        cold = [g for (build_id, _), g in groups.items()
                if not build_id or not any(cache.exists(cache_dir, build_id, s) for s in cache.SOURCES)]
        if cache_dir is None or len(cold) < 2:
            return  # nothing to share: answered one by one, as a live pipe is
        cold.sort(key=len, reverse=True)

        def in_child() -> Callable[[list[Request]], None]:
            def fill(group: list[Request]) -> None:
                problems: list[str] = []
                sibling = Symbolizer(resolver=self.resolver.sibling(problems.append))
                for r in group:
                    sibling.answer(r)
                if not problems:  # else this process reads the module again and warns
                    sibling.resolver.flush()
            return fill

        def here(group: list[Request]) -> None:
            for r in group:
                self.answer(r)

        self.resolver.scan()  # once, before the children fork
        share(cold, here, in_child, usable_cores() if jobs is None else jobs)


def symbolize_core(path: str | os.PathLike[str], options: Options | None = None, fmt: str = "text",
                   warn: Callable[[str], None] = _stderr_warning) -> Iterator[str]:
    """Each thread of a core file: a heading line (text), then its PC's frames."""
    symbolizer = Symbolizer(options, warn)
    try:
        for number, (heading, request) in enumerate(core_requests(path), 1):
            if fmt == "text":
                yield heading
            answer = (Answer(request, "??", None, None, (), "none", "no file of the core maps this PC")
                      if request.kind == "unmapped" else symbolizer.answer(request))
            yield from (text(answer) if fmt == "text" else json_lines(answer, number))
    finally:
        symbolizer.resolver.flush()


def symbolize_lines(lines: Iterable[str], options: Options | None = None, fmt: str = "text",
                    warn: Callable[[str], None] = _stderr_warning, read_ahead: bool = False) -> Iterator[str]:
    """Filter a log: every line, and after each that names addresses, what they are (`read_ahead`:
    see Symbolizer.lines)."""
    return Symbolizer(options, warn).lines(lines, fmt, read_ahead)


def symbolize_address(build_id: str | None, path: str | None, vaddr: int, options: Options | None = None,
                      warn: Callable[[str], None] = _stderr_warning) -> Answer:
    """One ELF virtual address of a module named by build-id and/or path."""
    symbolizer = Symbolizer(options, warn)
    answer = symbolizer.answer(Request(vaddr, vaddr, "vaddr", build_id=build_id, path=path))
    symbolizer.resolver.flush()
    return answer
