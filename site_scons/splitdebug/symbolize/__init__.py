"""Symbolizing crashes: addresses in logs (glibc backtraces, sanitizer and systemd-coredump frames,
Symbolizer Markup, build-id+offset) become functions and file:line:column, from the debug trees the
policies lay out (`inputs` parses, `lookup` finds the debug source, `index` answers, `output` prints)."""

from .index import AddressIndex, Frame
from .inputs import Request, parse_line
from .lookup import Options
from .output import Answer
from .run import Symbolizer, symbolize_address, symbolize_core, symbolize_lines

__all__ = ["AddressIndex", "Answer", "Frame", "Options", "Request", "Symbolizer", "parse_line",
           "symbolize_address", "symbolize_core", "symbolize_lines"]
