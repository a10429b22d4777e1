"""Producing the stripped binary and its debug file, atomically.

A split is done in-process by elfsplit when it knows the file's shape and the policy's flags (the
common case: no process per file), else by the external tools: at most three runs (extract, strip +
debuglink, and minidebuginfo when asked). Either way everything is written into a private temporary
directory beside the outputs, renamed into place only when all succeeded. The input is never written.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from ..elf import read as elfread
from ..elf import write as elfsplit
from ..elf.relink import relink_like, symtab_unlinked, write_links
from ..errors import SplitDebugError, ToolError
from ..policy import Policy
from ..layout import StageRoot
from .stage import TEMP_PREFIX, open_dir_inside, replace_at


@dataclass(frozen=True, kw_only=True)
class Tools:
    """External programs; each overridable like Meson does (OBJCOPY=… in the environment)."""

    objcopy: str = "objcopy"
    strip: str = "strip"
    eu_strip: str = "eu-strip"
    eu_elfcompress: str = "eu-elfcompress"
    # "builtin": split in-process where elfsplit can, the tools elsewhere; "tools": always the tools.
    engine: str = "builtin"

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Tools:
        env = os.environ if environ is None else environ
        return cls(objcopy=env.get("OBJCOPY", "objcopy"), strip=env.get("STRIP", "strip"),
                   eu_strip=env.get("EU_STRIP", "eu-strip"), eu_elfcompress=env.get("EU_ELFCOMPRESS", "eu-elfcompress"),
                   engine=engine_from(env))

    def missing(self, policy: Policy) -> list[str]:
        """The tools the policy needs that are not found, each named as it was asked for (an empty
        setting, OBJCOPY="", by its variable)."""
        need = [("OBJCOPY", self.objcopy)]
        if policy.tool == "elfutils":
            need += [("EU_STRIP", self.eu_strip), ("EU_ELFCOMPRESS", self.eu_elfcompress)]
        return [tool or f'{var}=""' for var, tool in need if not tool or shutil.which(tool) is None]


ENGINES = ("builtin", "tools")


def engine_from(environ: dict[str, str] | os._Environ[str]) -> str:
    engine = environ.get("SPLITDEBUG_ENGINE", "builtin") or "builtin"
    if engine not in ENGINES:
        raise SplitDebugError(f"SPLITDEBUG_ENGINE={engine}: expected one of {', '.join(ENGINES)}")
    return engine


@dataclass(frozen=True)
class SplitResult:
    build_id: str | None
    debuglink: str
    crc: int
    stripped_bytes: int
    debug_bytes: int


@dataclass(frozen=True)
class Deferred:
    """A split whose debug file is written; finish() writes the stripped binary and says how it went."""

    src: Path
    strip: Callable[[], SplitResult]

    def finish(self) -> SplitResult:
        try:
            return self.strip()
        except ToolError as err:
            raise ToolError(str(self.src), err.argv, err.stderr) from None


def run(argv: list[str], subject: str | os.PathLike[str]) -> None:
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    except OSError as err:
        raise ToolError(os.fspath(subject), argv, f"cannot run: {err.strerror}") from None
    if proc.returncode != 0:
        raise ToolError(os.fspath(subject), argv, proc.stderr or proc.stdout)


@contextmanager
def scratch_dir(near: Path) -> Iterator[Path]:
    """A private temporary directory on the same file system as `near`, so rename() is atomic."""
    near.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=near))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _temp_name(directory: Path) -> Path:
    """A new, empty file of ours in `directory` (swept by the next run if this one is killed)."""
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    except FileNotFoundError:  # its directory is not there yet (rare: callers make it first)
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    os.close(fd)
    return Path(name)


@contextmanager
def out_dir(stage_root: StageRoot | None, directory: Path) -> Iterator[int]:
    """A directory fd to write into: walked from the root, never through a symlink leaving it
    (stage.open_dir_inside); without a staging root (SCons' build directory), the directory as named."""
    if stage_root is not None:
        fd = open_dir_inside(stage_root, directory)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def commit(tmp: Path, dest: Path, mode: int | None = None) -> None:
    """Rename a finished temporary file over its destination (never half-written)."""
    if mode is not None:
        os.chmod(tmp, mode)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def split_binary(src: Path, stripped_out: Path, debug_out: Path, *, policy: Policy, kind: str,
                 debuglink: str, tools: Tools, write_debug: bool = True, compress: bool = True,
                 defer_strip: bool = False, stage_root: StageRoot | None = None) -> SplitResult | Deferred:
    """Strip `src` into `stripped_out` and extract its debug info into `debug_out`.

    The debug file lands first: a run killed between the two renames leaves a debug file without
    its stripped binary (redone next time), never a stripped binary whose debug file is missing.
    With write_debug=False (a duplicate build-id whose debug file exists) only the binary is written.
    With compress=False the debug sections stay uncompressed whatever the policy says: dwz runs
    later over the whole tree and cannot read compressed input (`recompress_debug` follows it).
    With defer_strip=True an in-process split may stop once the debug file is written and return a
    Deferred: its finish() writes the stripped binary (the tree pass runs dwz meanwhile).
    With stage_root, the in-process split writes relative to directory fds walked from that root.
    """
    try:
        return _split_binary(src, stripped_out, debug_out, policy=policy, kind=kind, debuglink=debuglink,
                             tools=tools, write_debug=write_debug, compress=compress, defer_strip=defer_strip,
                             stage_root=stage_root)
    except ToolError as err:  # name the input, not one of our temporary files
        raise ToolError(str(src), err.argv, err.stderr) from None


def _split_binary(src: Path, stripped_out: Path, debug_out: Path, *, policy: Policy, kind: str,
                  debuglink: str, tools: Tools, write_debug: bool, compress: bool,
                  defer_strip: bool, stage_root: StageRoot | None) -> SplitResult | Deferred:
    flags = policy.strip.for_kind(kind)
    if flags is None:
        raise SplitDebugError(f"{src}: policy {policy.name!r} does not strip {kind.replace('_', ' ')}s")
    mode = stat_mode(src)
    if tools.engine == "builtin":
        done = _split_builtin(src, stripped_out, debug_out, policy=policy, flags=flags, debuglink=debuglink,
                              write_debug=write_debug, compress=compress, mode=mode, defer_strip=defer_strip,
                              stage_root=stage_root)
        if done is not None:
            return done
    with scratch_dir(stripped_out.parent) as tmp:
        dbg = tmp / debuglink  # named as the debuglink: objcopy and eu-strip take the name from it
        out = tmp / "stripped"
        compression = policy.compress_debug_sections if compress else "none"
        # objcopy compresses with zlib at level 6 only: another policy level or encoder is applied
        # in-process (unless the tools are forced), so that it holds for the files elfsplit declines too.
        own_level = (compression == "zlib" and tools.engine == "builtin"
                     and (policy.compress_level != 6 or policy.zlib_encoder != "zlib"))
        # dwz, when it follows (compress=False), reads no compressed section: -gz or ld's zstd input
        decompress = not compress and bool(_debug_compression(src))
        if policy.tool == "binutils":
            argv = [tools.objcopy, "--only-keep-debug"]
            if compression != "none" and not own_level:
                argv.append(f"--compress-debug-sections={compression}")
            elif decompress:
                argv.append("--decompress-debug-sections")
            run(argv + [str(src), str(dbg)], src)
            if own_level:
                recompress_debug(dbg, "zlib", tools, policy.compress_level, policy.zlib_encoder)
            relink_like(src, dbg)  # before the CRC is taken
            # An input's own .gnu_debuglink goes first: objcopy would only warn and keep it.
            run([tools.objcopy, *flags, "--remove-section=.gnu_debuglink", f"--add-gnu-debuglink={dbg}",
                 str(src), str(out)], src)
        else:
            run([tools.eu_strip, *flags, "-f", str(dbg), "-F", debuglink, "-o", str(out),
                 str(_without_symtab_links(src, tmp))], src)
            if own_level:
                recompress_debug(dbg, "zlib", tools, policy.compress_level, policy.zlib_encoder)
            elif compression != "none" or decompress:
                _tools_compress(dbg, None, compression, tools, elfutils=True)
            relink_like(src, dbg)
            # eu-strip wrote the CRC of the file before compression; what gdb checks is the final one.
            set_debuglink_crc(out, elfread.crc32_file(dbg))
        relink_like(src, out)
        if policy.keep_symbols == "minidebuginfo":
            add_minidebuginfo(out, dbg, tmp, tools, policy.minidebuginfo_xz_preset)
        crc = elfread.crc32_file(dbg)
        info = elfread.read_elf(out)
        result = SplitResult(info.build_id, debuglink, crc, out.stat().st_size, dbg.stat().st_size)
        if write_debug:
            commit(dbg, debug_out, policy.debug_file_mode)
        commit(out, stripped_out, mode)
    return result


def _tools_compress(src: Path, out: Path | None, compression: str, tools: Tools, elfutils: bool) -> None:
    """Set the debug sections of `src` to `compression` ("none" decompresses) with the tools, into
    `out` (None: in place). Under an elfutils policy with eu-elfcompress: objcopy rewrites the
    layout and can move a note segment off its alignment (mold's). elfutils 0.188 neither reads nor
    writes zstd, which stays objcopy's."""
    dest = [] if out is None else [str(out)]
    if elfutils and compression != "zstd" and elfsplit.ELFCOMPRESS_ZSTD not in _debug_compression(src):
        with open(src, "rb") as f:
            abi = f.read(16)[7:9]  # EI_OSABI, EI_ABIVERSION: eu-elfcompress 0.188 writes them as 0
        run([tools.eu_elfcompress, "-q", "-t", compression, *(["-o", *dest] if dest else []), str(src)], src)
        with open(out or src, "r+b") as f:
            f.seek(7)
            f.write(abi)
    else:
        flag = "--decompress-debug-sections" if compression == "none" else f"--compress-debug-sections={compression}"
        run([tools.objcopy, flag, str(src), *dest], src)


def _without_symtab_links(src: Path, tmp: Path) -> Path:
    """`src`, or a copy of it in `tmp` whose loaded sections no longer link the .symtab: otherwise
    eu-strip ships a static executable's whole .symtab and its debug file has none (no minidebuginfo)."""
    headers = elfread.read_headers(src)
    changes = symtab_unlinked(headers)
    if not changes:
        return src
    copy = tmp / "input"
    shutil.copyfile(src, copy)
    write_links(copy, headers, changes)
    return copy


def _debug_compression(path: Path) -> set[int]:
    with open(path, "rb") as f:
        return elfsplit.debug_compression(elfread.read_headers(path), f)


def _split_builtin(src: Path, stripped_out: Path, debug_out: Path, *, policy: Policy, flags: tuple[str, ...],
                   debuglink: str, write_debug: bool, compress: bool, mode: int,
                   defer_strip: bool, stage_root: StageRoot | None) -> SplitResult | Deferred | None:
    """The split done in-process (elfsplit); None when elfsplit declines and the tools must do it."""
    strip = elfsplit.parse_flags(policy.tool, flags)
    compression = policy.compress_debug_sections if compress else "none"
    if strip is None or compression not in ("none", "zlib"):
        return None
    headers = elfread.read_headers(src)
    with open(src, "rb") as f:
        compressed = elfsplit.debug_compression(headers, f)
        # zstd from the linker under a zlib policy, or compressed input that dwz (to come) cannot read:
        # objcopy converts it (recompress_debug then applies the policy's level).
        if (compression == "zlib" and compressed - {elfsplit.ELFCOMPRESS_ZLIB}) or (compressed and not compress):
            return None
        split_plan = elfsplit.plan(headers, strip, f)
        if split_plan is None:
            return None
        build_id = elfread.build_id_of(headers, f)
        # A temporary file beside the output, renamed over it when complete; no directory per split.
        # Both made relative to a directory fd walked from the root (stage.open_dir_inside).

        def write_dbg(d: BinaryIO) -> tuple[int, int]:
            crc = elfsplit.write_debug(headers, f, d, encoder=policy.zlib_encoder,
                                       compress_level=policy.compress_level if compression == "zlib" else None)
            d.flush()
            return crc, os.fstat(d.fileno()).st_size

        with out_dir(stage_root, debug_out.parent if write_debug else stripped_out.parent) as dir_fd:
            crc, debug_bytes = replace_at(dir_fd, debug_out.name if write_debug else None, write_dbg,
                                          policy.debug_file_mode)

    def strip_now() -> SplitResult:
        with open(src, "rb") as f:
            extra = [(".gnu_debuglink", elfsplit.debuglink_data(debuglink, crc, headers.byte_order), 4)]
            if policy.keep_symbols == "minidebuginfo":
                size, pieces = elfsplit.mini_debuginfo_stream(headers, f)
                if size:
                    extra.append((".gnu_debugdata", _xz(pieces, size, policy.minidebuginfo_xz_preset), 1))

            def write_out(o: BinaryIO) -> int:
                elfsplit.write_stripped(split_plan, f, o, extra)
                o.flush()
                return os.fstat(o.fileno()).st_size

            with out_dir(stage_root, stripped_out.parent) as dir_fd:
                stripped_bytes = replace_at(dir_fd, stripped_out.name, write_out, mode)
        return SplitResult(build_id, debuglink, crc, stripped_bytes, debug_bytes)

    return Deferred(src, strip_now) if defer_strip else strip_now()


XZ_DICT_MAX = 8 << 20  # xz -6's dictionary: the encoder needs about 10 times it (97 MB), whatever the data


def _xz(data: bytes | Iterable[bytes], size: int | None = None, preset: int = 6) -> bytes:
    """xz at `preset` (6: xz's default, as find-debuginfo runs it); the dictionary is the data's size up to
    -6's 8 MiB (below it the same stream, without initialising 8 MiB of match tables for a few
    kilobytes; past it a bounded encoder: a 27 MB symbol ELF needed 351 MB with a dictionary its size).
    `data` may come in pieces of `size` bytes in all (the same stream: never whole in memory)."""
    if isinstance(data, bytes):
        data, size = [data], len(data)
    filters = [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": max(4096, min(size or 0, XZ_DICT_MAX))}]
    xz = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters)
    return b"".join([*(xz.compress(piece) for piece in data), xz.flush()])


def strip_only(src: Path, out_path: Path, *, policy: Policy, kind: str, tools: Tools) -> None:
    """Strip with the policy's flags and keep no debug file (dh_strip's way with a binary that has
    no build-id, under `missing_build_id: warn`)."""
    flags = policy.strip.for_kind(kind)
    if flags is None:
        return
    mode = stat_mode(src)
    with scratch_dir(out_path.parent) as tmp:
        out = tmp / "stripped"
        if policy.tool == "binutils":
            run([tools.objcopy, *flags, str(src), str(out)], src)
        else:
            run([tools.eu_strip, *flags, "-o", str(out), str(src)], src)
        commit(out, out_path, mode)


def strip_archive(src: Path, out_path: Path, *, policy: Policy, tools: Tools) -> None:
    """Static archives: binutils strip with the policy's flags (debug info is discarded, as dh_strip does)."""
    flags = policy.strip.static_archive
    if flags is None:
        return
    mode = stat_mode(src)
    with scratch_dir(out_path.parent) as tmp:
        out = tmp / "archive.a"
        run([tools.strip, *flags, "-o", str(out), str(src)], src)
        commit(out, out_path, mode)


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


def set_debuglink_crc(binary: Path, crc: int) -> bool:
    """Rewrite the CRC word of .gnu_debuglink (what sepdebugcrcfix does after dwz).

    A file with other names (st_nlink > 1) is never written in place: one of them may be outside
    the root. It is copied, patched and renamed over `binary`; True says the inode changed.
    """
    info = elfread.read_elf(binary)
    offset = elfread.debuglink_crc_offset(info)
    word = struct.pack("<I" if info.little_endian else ">I", crc)
    fd = os.open(binary, os.O_RDWR | os.O_NOFOLLOW)
    with os.fdopen(fd, "r+b") as f:
        st = os.fstat(f.fileno())
        if st.st_nlink == 1:
            f.seek(offset)
            f.write(word)
            return False
        tmp_fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=binary.parent)
        try:
            with os.fdopen(tmp_fd, "w+b") as out:
                shutil.copyfileobj(f, out, 1 << 20)
                out.seek(offset)
                out.write(word)
                os.fchmod(out.fileno(), st.st_mode & 0o7777)
            os.replace(tmp, binary)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return True


def add_minidebuginfo(binary: Path, debug_file: Path, tmp: Path, tools: Tools, preset: int = 6) -> None:
    """Embed `.gnu_debugdata`: an xz-compressed ELF with the function symbols not in .dynsym.

    Same content as find-debuginfo -m: gdb and systemd-coredump then name functions in backtraces
    with no debug package installed.
    """
    debug_headers = elfread.read_headers(debug_file)
    with open(binary, "rb") as b, open(debug_file, "rb") as d:
        funcs = sorted(elfsplit.minidebuginfo_names(elfread.read_headers(binary), b, debug_headers, d))
    xz = tmp / "mini.xz"
    if not funcs:  # objcopy fails on an empty --keep-symbols list: an ELF with an empty .symtab
        with open(debug_file, "rb") as f:
            xz.write_bytes(_xz(elfsplit.mini_debuginfo(debug_headers, f, keep=set()), preset=preset))
        run([tools.objcopy, f"--add-section=.gnu_debugdata={xz}", str(binary)], binary)
        return
    info = elfread.read_elf(debug_file)
    remove = [arg for s in info.sections
              if not s.name.startswith(".debug_") and not s.allocated
              and s.type in ("SHT_PROGBITS", "SHT_NOTE", "SHT_NOBITS") for arg in ("--remove-section", s.name)]
    keep = tmp / "keep-symbols"
    keep.write_bytes(b"".join(f + b"\n" for f in funcs))
    mini = tmp / "mini.elf"
    run([tools.objcopy, "-S", *remove, f"--keep-symbols={keep}", str(debug_file), str(mini)], debug_file)
    xz.write_bytes(_xz(mini.read_bytes(), preset=preset))
    run([tools.objcopy, f"--add-section=.gnu_debugdata={xz}", str(binary)], binary)


def recompress_debug(path: Path, compression: str, tools: Tools, level: int = 6, encoder: str = "zlib",
                     elfutils: bool = False) -> None:
    """Set a debug file's section compression (`none` decompresses), atomically, keeping its mode.
    (`elfutils`: under an elfutils policy the tools' way is eu-elfcompress.)

    The tree-level passes use it: dwz needs uncompressed input, the policy wants the result compressed.
    """
    mode = stat_mode(path)
    headers = elfread.read_headers(path) if compression in ("zlib", "none") and tools.engine == "builtin" else None
    otherwise: set[int] = set()
    if headers is not None:
        with open(path, "rb") as f:
            otherwise = elfsplit.debug_compression(headers, f) - {elfsplit.ELFCOMPRESS_ZLIB}
    # In-process when the program headers follow the ELF header, as every writer here puts them;
    # decompressing zstd is objcopy's (below).
    if headers is not None and (not headers.phnum or headers.phoff == len(headers.ehdr)) \
            and not (otherwise and compression == "none"):
        if otherwise:  # zstd (from the linker) stayed zstd: objcopy decodes it, then zlib at our level
            with scratch_dir(path.parent) as tmp:
                run([tools.objcopy, "--decompress-debug-sections", str(path), str(tmp / path.name)], path)
                commit(tmp / path.name, path, mode)
            headers = elfread.read_headers(path)
        tmp_file = _temp_name(path.parent)
        try:
            with open(path, "rb") as f, open(tmp_file, "w+b") as new:
                elfsplit.write_debug(headers, f, new, encoder=encoder, decompress=compression == "none",
                                     compress_level=level if compression == "zlib" else None)
            commit(tmp_file, path, mode)
        finally:
            tmp_file.unlink(missing_ok=True)
        return
    with scratch_dir(path.parent) as tmp:
        out = tmp / path.name
        _tools_compress(path, out, compression, tools, elfutils)
        commit(out, path, mode)
