"""The policy keys of distribution parity (source_dir, dwz, package_format, arch_names, link style)
and the pure pieces behind them: fast, no external tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitdebug import layout
from splitdebug.tree import sources
from splitdebug.errors import PolicyError, SplitDebugError
from splitdebug.layout import PackageInfo, place
from splitdebug.package.rpm import quote
from splitdebug.policy import load_policy, parse_policy

BASE = """\
name: t
debug_root: /usr/lib/debug
debug_file: "{debug_root}/.build-id/{build_id_dir}/{build_id_rest}.debug"
keep_symbols: none
tool: binutils
strip: {executable: [], shared_library: [], static_archive: null}
"""
BID = "ab" + "c" * 38


def test_shipped_policies_say_what_their_tools_do() -> None:
    deb, rh, yocto = load_policy("debian"), load_policy("redhat"), load_policy("yocto")
    assert (deb.source_dir, deb.dwz, deb.dwz_altlink, deb.package_format) == (".", "multifile", "absolute", "deb")
    assert (rh.dwz, rh.dwz_altlink, rh.package_format, rh.symlinked_binaries) == \
        ("multifile", "relative", "rpm", "ignore")
    assert rh.ships_sources and not deb.ships_sources and yocto.ships_sources
    assert (yocto.dwz, yocto.package_format, yocto.build_id_links) == ("none", "none", ())
    pkg = PackageInfo("demo", "1.0", "1", "")
    assert layout.package_path(deb, deb.dwz_multifile or "", pkg) == "/usr/lib/debug/.dwz/x86_64-linux-gnu/demo.debug" \
        or layout.default_arch() != "x86_64"
    assert layout.package_path(rh, rh.dwz_multifile or "", PackageInfo("demo", "1.0", "1", "x86_64")) == \
        "/usr/lib/debug/.dwz/demo-1.0-1.x86_64"
    assert sources.source_dir(rh, PackageInfo("demo", "1.0", "1", "x86_64")) == "/usr/src/debug/demo-1.0-1.x86_64"
    assert sources.source_dir(yocto, PackageInfo("demo", "1.0", "r0")) == "/usr/src/debug/demo/1.0-r0"
    assert sources.source_dir(deb, PackageInfo()) == "."


def test_arch_names_and_multiarch() -> None:
    deb = load_policy("debian")
    assert layout.arch_of(deb, PackageInfo(arch="x86_64")) == "amd64"
    assert layout.arch_of(deb, PackageInfo(arch="aarch64")) == "arm64"
    assert layout.arch_of(deb, PackageInfo(arch="amd64")) == "amd64"
    assert layout.arch_of(load_policy("redhat"), PackageInfo(arch="x86_64")) == "x86_64"
    assert layout.multiarch_of("amd64") == layout.multiarch_of("x86_64") == "x86_64-linux-gnu"
    assert layout.package_path(deb, "{debug_root}/.dwz/{multiarch}/{package}.debug",
                               PackageInfo("p", arch="arm64")) == "/usr/lib/debug/.dwz/aarch64-linux-gnu/p.debug"


def test_link_style_from_root_is_rpms() -> None:
    rh = load_policy("redhat")
    links = {link.path: link.target for link in place(rh, "/usr/sbin/tool", BID, PackageInfo("d", "2", "3", "x86_64"),
                                                      dup=2).links}
    rest = BID[2:]
    assert links == {
        f"/usr/lib/.build-id/ab/{rest}.2": "../../../../usr/sbin/tool",
        f"/usr/lib/debug/.build-id/ab/{rest}.2.debug": "../../../../../usr/lib/debug/usr/sbin/tool-2-3.x86_64.debug",
        f"/usr/lib/debug/.build-id/ab/{rest}.2": f"../../../.build-id/ab/{rest}.2",
    }


def test_yocto_places_debug_files_beside_binaries() -> None:
    pl = place(load_policy("yocto"), "/usr/lib/libfoo.so.1", None, PackageInfo())
    assert (pl.debug_file, pl.debuglink, pl.links) == ("/usr/lib/.debug/libfoo.so.1", "libfoo.so.1", ())


@pytest.mark.parametrize("extra, line, key, reason", [
    ("dwz: multifile\n", 7, "dwz", "multifile needs dwz_multifile"),
    ("dwz: often\n", 7, "dwz", "'often' is not one of: none, single, multifile"),
    ("dwz_multifile: .dwz/{package}\n", 7, "dwz_multifile", "must be an absolute path"),
    ("dwz_multifile: \"/x/{path}\"\n", 7, "dwz_multifile", "unknown template field {path}"),
    ("source_dir: \"/usr/src/debug/{name}\"\n", 7, "source_dir", "unknown template field {name}"),
    ("source_dir: \"a=b\"\n", 7, "source_dir", "must be a directory name"),
    ("package_format: ipk\n", 7, "package_format", "'ipk' is not one of: none, rpm, deb"),
    ("arch_names: [amd64]\n", 7, "arch_names", "expected a mapping"),
    ("dwz_altlink: sideways\n", 7, "dwz_altlink", "'sideways' is not one of: absolute, relative"),
    ("build_id_links:\n  - {link: \"/x/{build_id}\", target: binary, relative: root}\n", 8,
     "build_id_links.relative", "'root' is not one of: shortest, from_root"),
    ("dwz_level: 3\n", 7, "dwz_level", "unknown key"),
    ("dwz_multifile_mib: 0\n", 7, "dwz_multifile_mib", "a size in MiB is at least 1 (null: no limit)"),
    ("dwz_multifile_mib: 1.5\n", 7, "dwz_multifile_mib", "expected an integer, got 1.5"),
    ("dwz_multifile_mib: lots\n", 7, "dwz_multifile_mib", "expected an integer, got 'lots'"),
])
def test_bad_new_keys_name_file_line_and_key(extra: str, line: int, key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(BASE + extra, "p.yaml")
    assert str(err.value).startswith(f"p.yaml:{line}: key {key!r}: ") and reason in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_new_keys_parse() -> None:
    p = parse_policy(BASE + "dwz: single\nsource_dir: null\narch_names: {x86_64: amd64}\npackage_format: deb\n",
                     "p.yaml")
    assert (p.dwz, p.source_dir, p.arch_names, p.package_format) == ("single", None, (("x86_64", "amd64"),), "deb")
    assert p.dwz_multifile_mib == 128  # the default: dwz's memory stays bounded
    assert parse_policy(BASE + "dwz_multifile_mib: null\n", "p.yaml").dwz_multifile_mib is None
    assert parse_policy(BASE + "dwz_multifile_mib: 64\n", "p.yaml").dwz_multifile_mib == 64


def test_source_dir_needs_package_fields() -> None:
    with pytest.raises(SplitDebugError, match=r"give --release --version \(SCons: PACKAGE_RELEASE, PACKAGE_VERSION\)"):
        sources.source_dir(load_policy("redhat"), PackageInfo("demo"))


def test_debugedit_listing_is_cleaned() -> None:
    data = b"src/a.c\0src/a.c\0<built-in>\0src/<command-line>\0../escape.h\0/abs/x.h\0./src/b.h\0\0"
    assert sources.parse_listing(data) == ["src/a.c", "src/b.h"]


def test_rpm_file_list_quoting() -> None:
    assert quote("/usr/bin/prog") == "/usr/bin/prog"
    assert quote("/usr/share/a b") == '"/usr/share/a b"'
    assert quote("/usr/share/100%[x]*") == "/usr/share/100%%\\[x\\]\\*"
    with pytest.raises(SplitDebugError):
        quote('/usr/share/a"b')


def test_split_refuses_source_root_without_source_dir(tmp_path: Path) -> None:
    from conftest import run_cli
    policy = tmp_path / "p.yaml"
    policy.write_text(BASE)
    (tmp_path / "root").mkdir()
    proc = run_cli("split", "--policy", policy, "--source-root", tmp_path, tmp_path / "root")
    assert proc.returncode == 2 and "has no source_dir" in proc.stderr and proc.stderr.count("\n") == 1
