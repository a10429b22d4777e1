"""find-debuginfo's command line (debugedit 5.0), parsed as its shell loop does: the first word that
is not an option is the build directory and ends the options; `-jN` and `-j N`; a `-o` before any
`-l`/`-p` renames debugfiles.list, one after them writes a sub-package list.

Every option it names is accepted; what splitdebug cannot do exactly is refused by the caller, never
ignored. An unknown option is an error (find-debuginfo would take it for the build directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SplitDebugError

USAGE = """\
Usage: splitdebug find-debuginfo [OPTION]... [builddir]
find-debuginfo's options (debugedit 5.0), with the same meaning; rpm's %__debug_install_post passes them:
[--strict-build-id] [-g] [-r] [-m] [-i] [-n]
[--keep-section SECTION] [--remove-section SECTION]
[--g-libs]
[-j N] [--jobs N]
[-o debugfiles.list]
[-S debugsourcefiles.list]
[--run-dwz] [--dwz-low-mem-die-limit N]
[--dwz-max-die-limit N]
[--dwz-single-file-mode]
[--build-id-seed SEED]
[--unique-debug-suffix SUFFIX]
[--unique-debug-src-base BASE]
[[-l filelist]... [-p 'pattern'] -o debuginfo.list]
[builddir]

Reads RPM_BUILD_ROOT, RPM_BUILD_DIR, RPM_PACKAGE_NAME, RPM_PACKAGE_VERSION, RPM_PACKAGE_RELEASE and
RPM_ARCH as find-debuginfo does. All file names in options are relative to builddir ('.' if not given).
"""

FLAGS = {"--strict-build-id": "strict", "-g": "strip_g", "-r": "reloc", "-m": "minidebuginfo",
         "-i": "gdb_index", "-n": "no_recompute", "--g-libs": "strip_glibs", "--run-dwz": "run_dwz",
         "--dwz-single-file-mode": "dwz_single_file"}
VALUES = {"--dwz-low-mem-die-limit": "dwz_low_mem_die_limit", "--dwz-max-die-limit": "dwz_max_die_limit",
          "--build-id-seed": "build_id_seed", "--unique-debug-suffix": "unique_debug_suffix",
          "--unique-debug-src-base": "unique_debug_src_base", "-S": "srcout"}


@dataclass
class SubList:
    """`[-l filelist]... [-p pattern] -o out`: the debug files of some files go to `out`."""

    lists: list[str] = field(default_factory=list)
    pattern: str = ""
    out: str = ""


@dataclass
class Options:
    strict: bool = False
    strip_g: bool = False
    strip_glibs: bool = False
    reloc: bool = False
    minidebuginfo: bool = False
    gdb_index: bool = False
    no_recompute: bool = False
    run_dwz: bool = False
    dwz_single_file: bool = False
    dwz_low_mem_die_limit: str = ""
    dwz_max_die_limit: str = ""
    build_id_seed: str = ""
    unique_debug_suffix: str = ""
    unique_debug_src_base: str = ""
    section_args: list[str] = field(default_factory=list)  # --keep-section/--remove-section, for eu-strip
    jobs: int = 1
    out: str = "debugfiles.list"
    srcout: str = ""
    sublists: list[SubList] = field(default_factory=list)
    builddir: str = "."
    help: bool = False
    version: bool = False


def parse(argv: list[str]) -> Options:
    opts = Options()
    pending = SubList()
    args = list(argv)
    while args:
        arg = args.pop(0)

        def value(option: str = arg) -> str:
            if not args:
                raise SplitDebugError(f"find-debuginfo: option {option} needs a value")
            return args.pop(0)

        if arg in FLAGS:
            setattr(opts, FLAGS[arg], True)
        elif arg in VALUES:
            setattr(opts, VALUES[arg], value())
        elif arg in ("--keep-section", "--remove-section"):
            opts.section_args += [arg, value()]
        elif arg in ("-j", "--jobs") or (arg.startswith("-j") and len(arg) > 2):
            text = value() if arg in ("-j", "--jobs") else arg[2:]
            if not text.isdigit() or int(text) < 1:
                raise SplitDebugError(f"find-debuginfo: {arg} {text}: give a number of jobs, at least 1"
                                      if arg in ("-j", "--jobs") else f"find-debuginfo: {arg}: give -jN, N at least 1")
            opts.jobs = int(text)
        elif arg == "-o":
            name = value()
            if not pending.lists and not pending.pattern:
                opts.out = name
            else:
                pending.out = name
                opts.sublists.append(pending)
                pending = SubList()
        elif arg == "-l":
            pending.lists.append(value())
        elif arg == "-p":
            pending.pattern = value()
        elif arg == "--help":
            opts.help = True
        elif arg == "--version":
            opts.version = True
        elif arg.startswith("-") and arg != "-":
            raise SplitDebugError(f"find-debuginfo: unknown option {arg!r} (see splitdebug find-debuginfo --help)")
        else:
            opts.builddir = arg
            if args:
                raise SplitDebugError(f"find-debuginfo: {args[0]!r} after the build directory {arg!r}: "
                                      "options come first")
            break
    if pending.lists or pending.pattern:
        raise SplitDebugError("find-debuginfo: -l or -p without a -o after it to name their list")
    if opts.build_id_seed and opts.no_recompute:
        raise SplitDebugError("find-debuginfo: --build-id-seed (unique build-ids) and -n (do not recompute "
                              "build-id) cannot be used together")
    if opts.strip_g and opts.strip_glibs:
        raise SplitDebugError("find-debuginfo: -g and --g-libs cannot be used together")
    for limit in (opts.dwz_low_mem_die_limit, opts.dwz_max_die_limit):
        if limit and not limit.isdigit():
            raise SplitDebugError(f"find-debuginfo: dwz die limit {limit!r}: give a number")
    return opts
