"""Export lists: parse them (`lists`), read what a library exports (`symbols`), check one against the
other (`verify`), report on a library (`report`) and compare it with an ABI baseline (`baseline`).

Plain data in and out; no SCons here. This module only hands the public names on.
"""

from .baseline import BaselineSymbol, Comparison, compare, load_baseline, parse_dpkg_symbols
from .lists import (ExportEntry, ExportList, ExportListError, VersionNode, load_export_list, parse_export_list,
                    version_script)
from .report import ExportReport, GnuHashStats, gnu_hash_stats, ideal_steps, report_library
from .symbols import (DeclaredSymbol, DynamicSymbol, LibrarySymbols, archive_symbols, declared_symbols, demangle,
                      read_library)
from .verify import (CheckResult, check, check_declared, check_library, check_library_result,
                     function_class)

__all__ = [
    "BaselineSymbol", "CheckResult", "Comparison", "DeclaredSymbol", "DynamicSymbol", "ExportEntry", "ExportList",
    "ExportListError", "ExportReport", "GnuHashStats", "LibrarySymbols", "VersionNode", "archive_symbols", "check",
    "check_declared", "check_library", "check_library_result", "compare", "declared_symbols", "demangle",
    "function_class", "gnu_hash_stats", "ideal_steps", "load_baseline", "load_export_list", "parse_dpkg_symbols",
    "parse_export_list", "read_library", "report_library", "version_script",
]
