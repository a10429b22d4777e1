"""Demangling as eu-addr2line -C does it: libstdc++'s abi::__cxa_demangle (through ctypes, no process),
which abbreviates the standard streams (`std::ostream`) where binutils' c++filt spells them out;
c++filt (one batch run, exports.symbols.demangle) where libstdc++ cannot be loaded."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterable
from typing import Any

from ..errors import SplitDebugError
from ..exports.symbols import demangle as cxxfilt_demangle

_LIB: Any = None


def _cxa() -> Any:
    global _LIB
    if _LIB is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6")
            libc = ctypes.CDLL(None)
            fn = lib.__cxa_demangle
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            libc.free.argtypes = [ctypes.c_void_p]
            _LIB = (fn, libc.free)
        except (OSError, AttributeError):
            _LIB = False
    return _LIB


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Demangled form of each mangled (`_Z…`) name; names that do not demangle are left out."""
    mangled = sorted({n for n in names if n.startswith("_Z")})
    cxa = _cxa()
    if not cxa:
        try:
            return cxxfilt_demangle(mangled)
        except SplitDebugError:
            return {}  # no c++filt either: mangled names are still right, only less readable
    fn, free = cxa
    out = {}
    status = ctypes.c_int()
    for name in mangled:
        ptr = fn(name.encode("utf-8", "surrogateescape"), None, None, ctypes.byref(status))
        if ptr:
            try:
                out[name] = ctypes.string_at(ptr).decode("utf-8", "replace")
            finally:
                free(ptr)
    return out
