"""Distribution policies: YAML files turned into frozen, validated dataclasses.

Everything that differs between distributions lives in the policy file; the code only knows the
vocabulary below. Validation walks the YAML node tree (not the loaded dict) so every error can name
the file, the line and the key.

One concern that reads best whole: the schema is the loader, key by key, and each key's check sits
beside its default and its error message.
"""

from __future__ import annotations

import functools
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import yaml

from .errors import PolicyError

# Fields a path template may use; values are filled in by layout.py.
PATH_FIELDS = frozenset({
    "debug_root", "path", "dir", "name", "build_id", "build_id_dir", "build_id_rest",
    "package", "version", "release", "arch", "multiarch", "dup",
})
DEBUGLINK_FIELDS = PATH_FIELDS | {"debug_file_name"}
# Package-wide templates (sources directory, dwz multifile): no per-binary fields.
PACKAGE_FIELDS = frozenset({"package", "version", "release", "arch", "multiarch"})
LINK_TARGETS = ("binary", "debug_file")  # or a path template
# Strip flags a policy may use (objcopy, strip, eu-strip): those the shipped policies use and the other
# section and symbol flags whose whole effect is on the output file. Nothing that names a file.
STRIP_FLAGS_ALONE = frozenset({
    "--strip-all", "--strip-debug", "-g", "--strip-unneeded", "--strip-dwo", "--only-keep-debug",
    "--remove-comment", "--enable-deterministic-archives", "-D", "--keep-file-symbols",
    "--discard-all", "-x", "--discard-locals", "-X", "--preserve-dates", "-p",
    "--reloc-debug-sections", "--permissive",
})
# ... and those that take one section or symbol name (`--flag=NAME`, or NAME as the next item).
STRIP_FLAGS_NAMED = frozenset({
    "--remove-section", "-R", "--keep-section", "--keep-symbol", "-K", "--strip-symbol", "-N",
    "--remove-relocations",
})
# The ELF package metadata note's values: package fields and what /etc/os-release says (ID, VERSION_ID,
# CPE_NAME), https://systemd.io/ELF_PACKAGE_METADATA/.
OS_RELEASE_FIELDS = {"os_id": "ID", "os_version_id": "VERSION_ID", "os_cpe_name": "CPE_NAME"}
NOTE_FIELDS = PACKAGE_FIELDS | frozenset(OS_RELEASE_FIELDS)

KEEP_SYMBOLS = ("none", "all", "minidebuginfo")
TOOLS = ("binutils", "elfutils")
COMPRESSIONS = ("none", "zlib", "zstd")
ZLIB_ENCODERS = ("isal", "zlib")  # ISA-L when installed (else zlib), or always Python's zlib
DUPLICATES = ("reuse", "suffix")
SYMLINKED = ("ignore", "debug_link")
MISSING_BUILD_ID = ("error", "warn")
LINK_STYLES = ("shortest", "from_root")  # ../bin/prog, or rpm's ../../../../usr/bin/prog
DWZ_MODES = ("none", "single", "multifile")
DWZ_ALTLINKS = ("absolute", "relative")  # dh_dwz's -M /usr/lib/debug/.dwz/…, find-debuginfo's -r
PACKAGE_FORMATS = ("none", "rpm", "deb")
KINDS = ("executable", "shared_library", "static_archive")
# The keys of a policy file, and whether each is required (configs/policy.schema.json says the same).
TOP_KEYS = {
    "name": True, "description": False, "debug_root": True, "debug_file": True,
    "debuglink": False, "build_id_links": False, "duplicate_build_id": False,
    "symlinked_binaries": False, "keep_symbols": True, "tool": True, "strip": True,
    "compress_debug_sections": False, "compress_level": False, "zlib_encoder": False, "debug_file_mode": False,
    "debug_file_mode_packaged": False,
    "missing_build_id": False,
    "build_id_bytes": False, "require_export_list": False, "cflags": False,
    "source_dir": False, "dwz": False, "dwz_multifile": False, "dwz_altlink": False,
    "dwz_multifile_mib": False, "dwz_groups": False, "dwz_max_dies": False, "minidebuginfo_xz_preset": False,
    "package_format": False,
    "arch_names": False, "package_note": False, "package_note_required": False, "gdb_index": False,
}
LINK_KEYS = {"link": True, "target": True, "relative": False, "if_executable": False}
_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false"}
DWZ_MULTIFILE_MIB = 128  # dwz's multifile pass needs about as much memory: < 200 MB with its own overhead
DWZ_GROUP_MIN_MIB = 16  # dwz_groups: a group holds at least this much DWARF (less shares too little)


@dataclass(frozen=True)
class BuildIdLink:
    """A symlink named by build-id (rpm's "compat" links): `link` -> `target`."""

    link: str
    target: str  # "binary", "debug_file" or a path template
    relative: str = "shortest"  # how the relative target is spelled: LINK_STYLES
    # rpm makes this link only for a file with an exec bit (brp-elfperms clears it on libraries):
    # `check` then expects it only for such files; `split` makes it always.
    if_executable: bool = False


@dataclass(frozen=True)
class StripFlags:
    """Flags of the strip pass for each kind of file, in the policy tool's syntax.

    For `binutils` they are objcopy flags (objcopy strips and adds the debuglink in one pass),
    for `elfutils` eu-strip flags. A kind set to null is left alone.
    """

    executable: tuple[str, ...] | None
    shared_library: tuple[str, ...] | None
    static_archive: tuple[str, ...] | None

    def for_kind(self, kind: str) -> tuple[str, ...] | None:
        flags: tuple[str, ...] | None = getattr(self, kind)
        return flags


@dataclass(frozen=True)
class Policy:
    name: str
    source: str
    description: str
    debug_root: str
    debug_file: str
    debuglink: str
    build_id_links: tuple[BuildIdLink, ...]
    duplicate_build_id: str
    symlinked_binaries: str
    keep_symbols: str
    tool: str
    strip: StripFlags
    compress_debug_sections: str
    compress_level: int  # zlib level of compressed debug sections; 6 is objcopy's
    debug_file_mode: int
    missing_build_id: str
    build_id_bytes: tuple[int, ...]
    require_export_list: bool
    cflags: tuple[str, ...] = field(default=())
    # Who writes zlib sections: ISA-L (elf.write.ISAL_LEVELS maps compress_level onto its levels,
    # zlib when it is not installed) or Python's zlib (at level 6, objcopy's bytes).
    zlib_encoder: str = "isal"
    # Where DWARF source paths point (-ffile-prefix-map / debugedit); absolute: sources shipped there.
    source_dir: str | None = None
    dwz: str = "none"
    dwz_multifile: str | None = None
    dwz_altlink: str = "absolute"
    # The most DWARF (MiB of .debug_info + .debug_types + .debug_str) one dwz multifile run is
    # given; more files get more multifiles. None: one multifile however big (dh_dwz, find-debuginfo).
    dwz_multifile_mib: int | None = DWZ_MULTIFILE_MIB
    # The tree's files go to dwz in this many groups, run at once (-j): each its own multifile, when
    # each group still holds DWZ_GROUP_MIN_MIB of DWARF. 1: one multifile, as dh_dwz and find-debuginfo.
    dwz_groups: int = 1
    # dwz -L: a debug file with more DIEs is left as it is (dwz holds about DWZ_BYTES_PER_DIE of memory
    # per DIE of a file: 881 MB for a 157 MB C++ debug file). None: dwz's own limit (50 million).
    dwz_max_dies: int | None = None
    # xz preset of the minidebuginfo (keep_symbols: minidebuginfo); 6 is xz's default, find-debuginfo's.
    minidebuginfo_xz_preset: int = 6
    # More dwz options (find-debuginfo's --dwz-low-mem-die-limit N: -l N); set by the rpm front end.
    dwz_args: tuple[str, ...] = ()
    package_format: str = "none"
    arch_names: tuple[tuple[str, str], ...] = ()  # machine name -> the distribution's name
    # JSON key -> template of the .note.package every linked binary carries; () for none.
    package_note: tuple[tuple[str, str], ...] = ()
    # False: a binary without the note is allowed (a package may opt out, as Fedora's may): check warns.
    package_note_required: bool = True
    # The mode the distribution's packages give debug files when packaging changes it (rpm ships
    # -debuginfo files 0644 although find-debuginfo writes 0444): `check` accepts either.
    debug_file_mode_packaged: int | None = None
    # Each debug file (and dwz multifile) gets a .gdb_index after dwz (Fedora's %_include_gdb_index).
    gdb_index: bool = False

    @property
    def ships_sources(self) -> bool:
        """Sources referenced by DWARF are copied into the tree (rpm's -debugsource)."""
        return self.source_dir is not None and self.source_dir.startswith(("/", "{debug_root}"))

    def arch_name(self, machine: str) -> str:
        """The distribution's name of an architecture (Debian: x86_64 -> amd64)."""
        return dict(self.arch_names).get(machine, machine)

    def source_needs(self) -> set[str]:
        """Package fields the sources directory uses (only needed when sources are mapped)."""
        return _fields(self.source_dir or "") & {"package", "version", "release"}

    @property
    def uses_build_id_path(self) -> bool:
        """True when the debug file's path depends on the build-id (unknown until link time)."""
        return "{build_id" in self.debug_file

    def needs(self) -> set[str]:
        """Package fields ({version}, {release}…) the templates use: they must be supplied."""
        used: set[str] = set()
        templates = [self.debug_file, self.debuglink] + [
            t for link in self.build_id_links for t in (link.link, link.target)]
        for t in templates:
            used |= _fields(t)
        return used & {"package", "version", "release", "arch"}


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


@functools.lru_cache(maxsize=1)
def configs_dir() -> Path:
    """The shipped policies: `configs/` at the top of the source tree, or inside the package.

    Found once per process: SCons loads the policy by name a few times per binary (3,866 calls for 150
    binaries), and resolving this file's path each time was 1.0 s of a build's CPU."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "configs", here / "configs"):
        if cand.is_dir():
            return cand
    return here.parent.parent / "configs"


def available_policies() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def load_policy(name_or_path: str | os.PathLike[str]) -> Policy:
    """Load a policy by name (`debian`) or by path to a YAML file."""
    text = os.fspath(name_or_path)
    # A name unless it looks like a path: `debian/` beside a debian/rules must not shadow `debian`.
    if os.sep in text or text.endswith((".yaml", ".yml")) or os.path.isfile(text):
        path = Path(text)
    else:
        path = configs_dir() / f"{text}.yaml"
        if not path.is_file():
            known = ", ".join(available_policies()) or "none"
            raise PolicyError(text, None, None, f"no policy named {text!r} found (known: {known})")
    try:
        st = path.stat()
    except OSError as err:
        raise PolicyError(str(path), None, None, f"cannot read: {err.strerror}") from None
    # SCons asks for the policy several times per binary; parsing YAML costs ~10 ms each time.
    return _load_file(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _load_file(path: str, mtime_ns: int, size: int) -> Policy:
    """Parse one policy file; cached by (path, mtime, size), so an edited file is read again."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(path, None, None, f"cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise PolicyError(path, None, None, "not UTF-8 text") from None
    return parse_policy(raw, path)


def parse_policy(raw: str, source: str) -> Policy:
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise PolicyError(source, line, None, f"invalid YAML: {err.problem}") from None
    except yaml.YAMLError as err:
        raise PolicyError(source, None, None, f"invalid YAML: {err}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise PolicyError(source, None, None, "invalid YAML: nested too deeply") from None
    if root is None:
        raise PolicyError(source, None, None, "empty policy file")
    return _Reader(source).policy(root)


class _Reader:
    """Turns composed YAML nodes into a Policy, failing on the first bad key with its line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, key: str | None, reason: str) -> PolicyError:
        return PolicyError(self.source, node.start_mark.line + 1, key, reason)

    def mapping(self, node: yaml.Node, key: str | None,
                spec: dict[str, bool]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node; `spec` says which keys exist and whether each is required."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            k = knode.value if isinstance(knode, yaml.ScalarNode) else None
            full = f"{key}.{k}" if key else str(k)
            if k not in spec:
                allowed = ", ".join(sorted(spec))
                raise self.fail(knode, full, f"unknown key (allowed: {allowed})")
            if k in out:
                raise self.fail(knode, full, "duplicate key")
            out[k] = (knode, vnode)
        for k, required in spec.items():
            if required and k not in out:
                raise self.fail(node, f"{key}.{k}" if key else k, "required key is missing")
        return out

    def scalar(self, node: yaml.Node, key: str, kind: type) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, f"expected {_KIND_NAMES.get(kind, kind.__name__)}")
        value = _construct(node)
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise self.fail(node, key, f"expected {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
        return value

    def choice(self, node: yaml.Node, key: str, choices: tuple[str, ...]) -> str:
        value = self.scalar(node, key, str)
        if value not in choices:
            raise self.fail(node, key, f"{value!r} is not one of: {', '.join(choices)}")
        return str(value)

    def template(self, node: yaml.Node, key: str, allowed: frozenset[str]) -> str:
        value = str(self.scalar(node, key, str))
        try:
            used = _fields(value)
        except ValueError as err:
            raise self.fail(node, key, f"bad template: {err}") from None
        # Fields are names only: a format spec ({build_id_rest:>1500000000}) or a conversion would let
        # a policy allocate without bound or change what a field means.
        if any(spec or conv or not f for _, f, spec, conv in string.Formatter().parse(value) if f is not None):
            raise self.fail(node, key, "template fields are names only: no format spec or conversion "
                                       "(':' or '!'), no empty {}")
        bad = used - allowed
        if bad:
            raise self.fail(node, key, f"unknown template field {{{sorted(bad)[0]}}} "
                                       f"(known: {', '.join(sorted(allowed))})")
        return value

    def str_list(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return None
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, "expected a list of strings or null")
        return tuple(str(self.scalar(item, key, str)) for item in node.value)

    def policy(self, root: yaml.Node) -> Policy:
        m = self.mapping(root, None, TOP_KEYS)
        def get(k: str) -> yaml.Node | None:
            return m[k][1] if k in m else None

        def opt(k: str, default: Any, read: Callable[[yaml.Node], Any]) -> Any:
            node = get(k)
            return default if node is None else read(node)

        debug_root = str(self.scalar(m["debug_root"][1], "debug_root", str))
        if not debug_root.startswith("/"):
            raise self.fail(m["debug_root"][1], "debug_root", "must be an absolute path")
        mode = opt("debug_file_mode", 0o644, lambda n: self.mode(n, "debug_file_mode"))
        packaged = opt("debug_file_mode_packaged", None, lambda n: None if isinstance(n, yaml.ScalarNode)
                       and _construct(n) is None else self.mode(n, "debug_file_mode_packaged"))
        level = opt("compress_level", 6, lambda n: self.scalar(n, "compress_level", int))
        if not 1 <= level <= 9:
            raise self.fail(m["compress_level"][1], "compress_level", "a zlib level is 1 to 9")
        lengths = opt("build_id_bytes", (20,), lambda n: self.int_list(n, "build_id_bytes"))
        dwz = opt("dwz", "none", lambda n: self.choice(n, "dwz", DWZ_MODES))
        multifile = opt("dwz_multifile", None, lambda n: self.image_template(n, "dwz_multifile"))
        if dwz == "multifile" and multifile is None:
            raise self.fail(m["dwz"][1], "dwz", "multifile needs dwz_multifile (its path template)")
        group_mib = opt("dwz_multifile_mib", DWZ_MULTIFILE_MIB, lambda n: self.mib_or_null(n, "dwz_multifile_mib"))
        return Policy(
            name=str(self.scalar(m["name"][1], "name", str)),
            source=self.source,
            description=opt("description", "", lambda n: str(self.scalar(n, "description", str))),
            debug_root=debug_root.rstrip("/") or "/",
            debug_file=self.template(m["debug_file"][1], "debug_file", PATH_FIELDS),
            debuglink=opt("debuglink", "{debug_file_name}",
                          lambda n: self.template(n, "debuglink", DEBUGLINK_FIELDS)),
            build_id_links=opt("build_id_links", (), self.links),
            duplicate_build_id=opt("duplicate_build_id", "reuse",
                                   lambda n: self.choice(n, "duplicate_build_id", DUPLICATES)),
            symlinked_binaries=opt("symlinked_binaries", "ignore",
                                   lambda n: self.choice(n, "symlinked_binaries", SYMLINKED)),
            keep_symbols=self.choice(m["keep_symbols"][1], "keep_symbols", KEEP_SYMBOLS),
            tool=self.choice(m["tool"][1], "tool", TOOLS),
            strip=self.strip(m["strip"][1]),
            compress_debug_sections=opt("compress_debug_sections", "none",
                                        lambda n: self.choice(n, "compress_debug_sections", COMPRESSIONS)),
            compress_level=level,
            debug_file_mode=mode,
            missing_build_id=opt("missing_build_id", "error",
                                 lambda n: self.choice(n, "missing_build_id", MISSING_BUILD_ID)),
            build_id_bytes=lengths,
            require_export_list=opt("require_export_list", False,
                                    lambda n: self.scalar(n, "require_export_list", bool)),
            cflags=opt("cflags", (), lambda n: self.str_list(n, "cflags") or ()),
            zlib_encoder=opt("zlib_encoder", "isal", lambda n: self.choice(n, "zlib_encoder", ZLIB_ENCODERS)),
            source_dir=opt("source_dir", None, self.source_dir),
            dwz=dwz,
            dwz_multifile=multifile,
            dwz_altlink=opt("dwz_altlink", "absolute", lambda n: self.choice(n, "dwz_altlink", DWZ_ALTLINKS)),
            dwz_multifile_mib=group_mib,
            dwz_groups=opt("dwz_groups", 1, lambda n: self.count(n, "dwz_groups")),
            dwz_max_dies=opt("dwz_max_dies", None, self.dies_or_null),
            minidebuginfo_xz_preset=opt("minidebuginfo_xz_preset", 6, self.xz_preset),
            package_format=opt("package_format", "none",
                               lambda n: self.choice(n, "package_format", PACKAGE_FORMATS)),
            arch_names=opt("arch_names", (), self.arch_names),
            package_note=opt("package_note", (), self.package_note),
            package_note_required=opt("package_note_required", True,
                                      lambda n: self.scalar(n, "package_note_required", bool)),
            debug_file_mode_packaged=packaged,
            gdb_index=opt("gdb_index", False, lambda n: self.scalar(n, "gdb_index", bool)),
        )

    def mode(self, node: yaml.Node, key: str) -> int:
        mode = int(self.scalar(node, key, int))
        if not 0 <= mode <= 0o7777:
            raise self.fail(node, key, "not a file mode (write it 0644)")
        if mode & 0o7002:  # debug files are data: never setuid, setgid, sticky or world-writable
            raise self.fail(node, key, f"{mode:04o} has setuid, setgid, sticky or world-write bits (0644 is usual)")
        return mode

    def package_note(self, node: yaml.Node) -> tuple[tuple[str, str], ...]:
        """Null (no note) or a mapping of JSON key to template, e.g. {type: rpm, name: "{package}"}."""
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return ()
        if not isinstance(node, yaml.MappingNode) or not node.value:
            raise self.fail(node, "package_note", "expected a mapping of JSON key to value template, or null")
        out: list[tuple[str, str]] = []
        for knode, vnode in node.value:
            key = str(self.scalar(knode, "package_note", str))
            if key in dict(out):
                raise self.fail(knode, f"package_note.{key}", "duplicate key")
            out.append((key, self.template(vnode, f"package_note.{key}", NOTE_FIELDS)))
        if "type" not in dict(out) or "name" not in dict(out):
            raise self.fail(node, "package_note", "the note needs at least 'type' and 'name'")
        return tuple(out)

    def count(self, node: yaml.Node, key: str) -> int:
        value = int(self.scalar(node, key, int))
        if not 1 <= value <= 64:
            raise self.fail(node, key, "a number of groups is 1 to 64")
        return value

    def xz_preset(self, node: yaml.Node) -> int:
        value = int(self.scalar(node, "minidebuginfo_xz_preset", int))
        if not 0 <= value <= 9:
            raise self.fail(node, "minidebuginfo_xz_preset", "an xz preset is 0 to 9")
        return value

    def dies_or_null(self, node: yaml.Node) -> int | None:
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return None
        value = int(self.scalar(node, "dwz_max_dies", int))
        if value < 1000:
            raise self.fail(node, "dwz_max_dies", "a number of DIEs, at least 1000 (null: dwz's own limit)")
        return value

    def mib_or_null(self, node: yaml.Node, key: str) -> int | None:
        """A positive number of MiB, or null for no limit."""
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return None
        value = self.scalar(node, key, int)
        if value < 1:
            raise self.fail(node, key, "a size in MiB is at least 1 (null: no limit)")
        return int(value)

    def image_template(self, node: yaml.Node, key: str) -> str | None:
        """A package-wide path template in the image (null for none)."""
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return None
        value = self.template(node, key, PACKAGE_FIELDS | {"debug_root"})
        if not value.startswith(("/", "{debug_root}")):
            raise self.fail(node, key, "must be an absolute path (start with / or {debug_root})")
        return value

    def source_dir(self, node: yaml.Node) -> str | None:
        """Null (leave DWARF paths alone), "." or a relative path (dpkg-buildflags' fixfilepath), or
        an absolute directory where the sources are also shipped."""
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return None
        value = self.template(node, "source_dir", PACKAGE_FIELDS | {"debug_root"})
        if not value or any(c in value for c in "\n\0=") or value.startswith("-"):
            raise self.fail(node, "source_dir", "must be a directory name (no '=', newline or leading '-')")
        return value

    def arch_names(self, node: yaml.Node) -> tuple[tuple[str, str], ...]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, "arch_names", "expected a mapping of machine name to architecture name")
        out = []
        for knode, vnode in node.value:
            machine = str(self.scalar(knode, "arch_names", str))
            out.append((machine, str(self.scalar(vnode, f"arch_names.{machine}", str))))
        return tuple(out)

    def int_list(self, node: yaml.Node, key: str) -> tuple[int, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, key, "expected a non-empty list of integers")
        return tuple(int(self.scalar(item, key, int)) for item in node.value)

    def strip(self, node: yaml.Node) -> StripFlags:
        m = self.mapping(node, "strip", {k: True for k in KINDS})
        for k in KINDS:
            self.strip_flags(m[k][1], f"strip.{k}")
        return StripFlags(**{k: self.str_list(m[k][1], f"strip.{k}") for k in KINDS})

    def strip_flags(self, node: yaml.Node, key: str) -> None:
        """Only flags whose whole effect is on the output file: none that names a file to read or write
        (--dump-section=.x=/path, --add-section=.x=/file, --keep-symbols=FILE, @FILE, -o, -f)."""
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        pending: str | None = None
        for item in items:
            flag = _construct(item) if isinstance(item, yaml.ScalarNode) else None
            if not isinstance(flag, str):
                continue  # str_list says what is wrong with it
            if pending is not None:
                self.strip_name(item, key, pending, flag)
                pending = None
            elif flag in STRIP_FLAGS_ALONE:
                pass
            elif flag in STRIP_FLAGS_NAMED:
                pending = flag
            elif flag.split("=", 1)[0] in STRIP_FLAGS_NAMED and "=" in flag:
                self.strip_name(item, key, *flag.split("=", 1))
            else:
                raise self.fail(item, key, f"strip flag {flag!r} is not allowed (allowed: section and symbol "
                                           f"flags that only change the output, see policy.STRIP_FLAGS_ALONE)")
        if pending is not None:
            raise self.fail(node, key, f"strip flag {pending!r} needs a section or symbol name after it")

    def strip_name(self, node: yaml.Node, key: str, flag: str, name: str) -> None:
        if not name or name.startswith("-") or "/" in name or "=" in name or "@" in name:
            raise self.fail(node, key, f"strip flag {flag!r}: {name!r} is not a section or symbol name")

    def links(self, node: yaml.Node) -> tuple[BuildIdLink, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "build_id_links", "expected a list of {link, target}")
        out = []
        for item in node.value:
            m = self.mapping(item, "build_id_links", LINK_KEYS)
            link = self.template(m["link"][1], "build_id_links.link", PATH_FIELDS)
            target = self.template(m["target"][1], "build_id_links.target", PATH_FIELDS)
            if "{build_id" not in link:
                raise self.fail(m["link"][1], "build_id_links.link", "a build-id link must use {build_id…}")
            style = (self.choice(m["relative"][1], "build_id_links.relative", LINK_STYLES)
                     if "relative" in m else "shortest")
            only_exec = (bool(self.scalar(m["if_executable"][1], "build_id_links.if_executable", bool))
                         if "if_executable" in m else False)
            out.append(BuildIdLink(link, target, style, only_exec))
        return tuple(out)


class _Mode(int):
    """A file mode, written back in octal (0644) as the policy files spell it."""


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML has no type hints here
    pass


_Dumper.add_representer(_Mode, lambda d, v: d.represent_scalar("tag:yaml.org,2002:int", f"0{int(v):o}"))
# Lists of flags on one line, as the shipped files write them; mappings (build_id_links) in block style.
_Dumper.add_representer(list, lambda d, v: d.represent_sequence(
    "tag:yaml.org,2002:seq", v, flow_style=all(not isinstance(x, (dict, list)) for x in v)))


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as a policy file would say it, every default written out: loading the YAML of
    this document gives the same policy."""
    def flags(v: tuple[str, ...] | None) -> list[str] | None:
        return None if v is None else list(v)
    doc: dict[str, Any] = {
        "name": policy.name, "description": policy.description, "debug_root": policy.debug_root,
        "debug_file": policy.debug_file, "debuglink": policy.debuglink,
        "build_id_links": [{"link": x.link, "target": x.target, "relative": x.relative,
                            "if_executable": x.if_executable} for x in policy.build_id_links],
        "duplicate_build_id": policy.duplicate_build_id, "symlinked_binaries": policy.symlinked_binaries,
        "keep_symbols": policy.keep_symbols, "tool": policy.tool,
        "strip": {k: flags(policy.strip.for_kind(k)) for k in KINDS},
        "compress_debug_sections": policy.compress_debug_sections, "compress_level": policy.compress_level,
        "zlib_encoder": policy.zlib_encoder,
        "debug_file_mode": _Mode(policy.debug_file_mode),
        "debug_file_mode_packaged": (None if policy.debug_file_mode_packaged is None
                                     else _Mode(policy.debug_file_mode_packaged)),
        "missing_build_id": policy.missing_build_id,
        "build_id_bytes": list(policy.build_id_bytes), "require_export_list": policy.require_export_list,
        "cflags": list(policy.cflags), "source_dir": policy.source_dir, "dwz": policy.dwz,
        "dwz_multifile": policy.dwz_multifile, "dwz_altlink": policy.dwz_altlink,
        "dwz_multifile_mib": policy.dwz_multifile_mib, "dwz_groups": policy.dwz_groups,
        "dwz_max_dies": policy.dwz_max_dies, "minidebuginfo_xz_preset": policy.minidebuginfo_xz_preset,
        "package_format": policy.package_format,
        "arch_names": dict(policy.arch_names),
        "package_note": dict(policy.package_note) or None,
        "package_note_required": policy.package_note_required,
        "gdb_index": policy.gdb_index,
    }
    return doc


def dump_policy(policy: Policy) -> str:
    """policy_document as YAML, in the policy files' key order."""
    return str(yaml.dump(policy_document(policy), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False, width=100))


def _construct(node: yaml.ScalarNode) -> Any:
    """The Python value of one scalar, resolved the way yaml.safe_load would."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
