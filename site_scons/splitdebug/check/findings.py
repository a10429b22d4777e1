"""The rules' table (ids, names, severities, what each checks) and the findings they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType



ERROR = "error"
WARNING = "warning"

@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str  # the usual severity; a few rules lower it (named in `checks`)
    checks: str


RULES: tuple[Rule, ...] = (
    Rule("SD101", "debug-sections-in-shipped-binary", ERROR,
         "a shipped executable, shared library or (when the policy strips them) static archive member "
         "has non-allocated .debug_* or .zdebug_* sections (an allocated one, such as rustc's "
         ".debug_gdb_scripts, is part of the loaded image)"),
    Rule("SD102", "symtab-in-shipped-binary", ERROR,
         "keep_symbols is none or minidebuginfo, yet the shipped binary has .symtab"),
    Rule("SD103", "symtab-missing", ERROR, "keep_symbols is all, yet the shipped binary has no .symtab"),
    Rule("SD104", "minidebuginfo-missing", ERROR,
         "keep_symbols is minidebuginfo, yet the shipped binary has no .gnu_debugdata"),
    Rule("SD105", "minidebuginfo-invalid", ERROR,
         ".gnu_debugdata is not one xz stream of an ELF file with a .symtab"),
    Rule("SD106", "section-link-invalid", ERROR,
         "a section header's sh_link (or sh_info naming a section) in a shipped binary or a debug file names "
         "no section, or one of the wrong type (a relocation's not a symbol table, a symbol table's not a "
         "string table): gdb, objdump and eu-unstrip refuse the file"),
    Rule("SD201", "missing-build-id", ERROR,
         "a shipped binary has no GNU build-id note (a warning when the policy's missing_build_id is warn)"),
    Rule("SD202", "build-id-wrong-length", ERROR, "the build-id's length is not one of the policy's build_id_bytes"),
    Rule("SD203", "duplicate-build-id", ERROR,
         "two different shipped binaries (or two different debug files) carry one build-id; hard links "
         "and identical copies (equal but for .gnu_debuglink) are not collisions"),
    Rule("SD204", "multiple-build-ids", ERROR,
         "a shipped binary or debug file has more than one GNU build-id note (gdb and libdwfl then disagree "
         "on which one names its debug file)"),
    Rule("SD205", "package-note-missing", ERROR,
         "the policy's package_note asks for an ELF package metadata note (.note.package: owner FDO, type "
         "0xcafe1a7e), yet a shipped binary has none"),
    Rule("SD206", "package-note-invalid", ERROR,
         "a shipped binary's package metadata note is not one compact JSON object (UTF-8, NUL-padded) with "
         "every key the policy's package_note names, or there is more than one such note"),
    Rule("SD207", "package-note-absent", WARNING,
         "the policy's package_note is stamped where the build allows, but not required "
         "(package_note_required: false), and a shipped binary has none"),
    Rule("SD301", "no-debuglink", WARNING,
         "a stripped shipped binary has no .gnu_debuglink (stripped before it was installed?)"),
    Rule("SD302", "debuglink-name-mismatch", ERROR,
         "the name in .gnu_debuglink is not the one the policy's layout gives"),
    Rule("SD303", "debug-file-missing", ERROR,
         "no regular file where the policy's layout puts the binary's debug file"),
    Rule("SD304", "debuglink-crc-mismatch", ERROR,
         "the CRC32 in .gnu_debuglink is not the CRC32 of the debug file (gdb rejects it)"),
    Rule("SD305", "debug-info-lost", ERROR,
         "a stripped shipped binary has no .gnu_debuglink and no debug file where the policy puts it "
         "(stripped before it was installed, e.g. install -s): its debug info is lost"),
    Rule("SD401", "debug-file-build-id-mismatch", ERROR, "the debug file's build-id is not the binary's"),
    Rule("SD402", "debug-file-with-no-debug-symbols", ERROR,
         "a binary's debug file has no .debug_info or no .debug_line; another file under the debug root "
         "(a dwz multifile) no .debug_* section (lintian's tag)"),
    Rule("SD403", "debug-symbols-not-detached", ERROR,
         "an ELF file under the debug root holds code: its .text is not NOBITS (lintian's tag)"),
    Rule("SD404", "orphan-debug-file", WARNING, "a debug file that no shipped binary's layout leads to"),
    Rule("SD405", "debug-file-mode", WARNING, "a binary's debug file's mode is not the policy's debug_file_mode"),
    Rule("SD406", "debug-altlink-broken", ERROR,
         "a debug file's .gnu_debugaltlink (dwz) names no file in the tree, or one of another build-id"),
    Rule("SD407", "debug-compression-mismatch", ERROR,
         "a debug file's DWARF is compressed in another format than the policy's compress_debug_sections "
         "(zstd where the policy says zlib or none: elfutils 0.188 and dwz 0.15 cannot read it); zlib "
         "where the policy says none is a warning"),
    Rule("SD408", "debug-file-without-gdb-index", ERROR,
         "the policy asks for gdb_index and a binary's debug file, or a dwz multifile one uses, has DWARF "
         "but no .gdb_index (nor .debug_names): gdb indexes it itself at every start, and ignores the "
         "index of every file whose multifile lacks one"),
    Rule("SD501", "build-id-link-missing", ERROR,
         "a symlink the policy asks for (build_id_links, or <link>.debug of a symlinked binary) is missing"),
    Rule("SD502", "build-id-link-wrong-target", ERROR,
         "a policy symlink resolves to another file than the policy's target"),
    Rule("SD503", "dangling-symlink", ERROR,
         "a symlink resolves to nothing inside the root, or loops; outside the debug root, a link that "
         "merely dangles is a warning (a -dev package's libfoo.so leads into the library package, which a "
         "tree checked alone does not hold), a loop is an error"),
    Rule("SD504", "path-leaves-root", ERROR, "a symlink's target climbs out of the root (it is not followed)"),
    Rule("SD505", "build-id-link-name-mismatch", ERROR,
         "a file or symlink named by build-id (.build-id/xx/rest[.debug]) leads to an ELF file of another build-id"),
    Rule("SD506", "build-root-in-link", ERROR,
         "a symlink's absolute target names the staging root's own path (a build directory baked into the "
         "package: the link dangles once installed)"),
    Rule("SD601", "non-debug-file-in-debug-root", ERROR,
         "under the debug root: a file that is not ELF, or a symlink that is not one of the policy's links"),
    Rule("SD602", "unstripped-object", WARNING,
         "an ELF object (.o, .ko) outside the debug root carries debug sections"),
    Rule("SD603", "debug-file-outside-debug-root", ERROR,
         "a separated debug file lies outside the debug root and no binary's layout puts it there"),
    Rule("SD701", "export-list-mismatch", ERROR,
         "with --exports: a shared library does not export exactly its list"),
    Rule("SD702", "export-list-missing", WARNING,
         "with --exports: no list for a shared library (an error when the policy requires export lists)"),
    Rule("SD901", "damaged-elf", ERROR, "a file with the ELF or ar magic cannot be read as one (truncated, corrupt)"),
    Rule("SD902", "unreadable-path", ERROR, "a file or directory that cannot be read"),
)
RULES_BY_ID: Mapping[str, Rule] = MappingProxyType({r.id: r for r in RULES})


@dataclass(frozen=True)
class Finding:
    rule: str  # a rule id, SDnnn
    severity: str  # error or warning
    path: str  # image path: where the file sits in the installed system
    reason: str

    @property
    def name(self) -> str:
        return RULES_BY_ID[self.rule].name


def finding(rule: str, path: str, reason: str, severity: str | None = None) -> Finding:
    return Finding(rule, severity or RULES_BY_ID[rule].severity, path, reason)
