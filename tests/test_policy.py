"""Policy files: the shipped ones load; every kind of mistake names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitdebug.errors import PolicyError
from splitdebug.layout import PackageInfo, place
from splitdebug.policy import available_policies, load_policy

DEBIAN = (Path(__file__).resolve().parent.parent / "configs" / "debian.yaml").read_text()


def test_shipped_policies_load() -> None:
    assert {"debian", "redhat"} <= set(available_policies())
    for name in available_policies():
        assert load_policy(name).name == name


def test_debian_defaults_match_dh_strip() -> None:
    p = load_policy("debian")
    assert p.compress_debug_sections == "zlib"  # not zstd: elfutils 0.188 cannot read it
    assert p.keep_symbols == "none"
    assert p.strip.shared_library is not None and "--strip-unneeded" in p.strip.shared_library
    assert p.debug_file_mode == 0o644
    bid = "ab" + "c" * 38
    pl = place(p, "/usr/bin/prog", bid, PackageInfo())
    assert pl.debug_file == f"/usr/lib/debug/.build-id/ab/{'c' * 38}.debug"
    assert pl.debuglink == f"{'c' * 38}.debug" and pl.links == ()


def test_redhat_defaults_match_rpm() -> None:
    p = load_policy("redhat")
    bid = "ab" + "c" * 38
    pl = place(p, "/usr/bin/prog", bid, PackageInfo("demo", "1.0", "1", "x86_64"))
    assert pl.debug_file == "/usr/lib/debug/usr/bin/prog-1.0-1.x86_64.debug"
    rest = "c" * 38
    assert {(link.path, link.target) for link in pl.links} == {
        # rpm spells these two from the root (seen in rpmbuild's own packages: test_distro_compare.py)
        (f"/usr/lib/.build-id/ab/{rest}", "../../../../usr/bin/prog"),
        (f"/usr/lib/debug/.build-id/ab/{rest}.debug", "../../../../../usr/lib/debug/usr/bin/prog-1.0-1.x86_64.debug"),
        (f"/usr/lib/debug/.build-id/ab/{rest}", f"../../../.build-id/ab/{rest}"),
    }
    dup = place(p, "/usr/bin/prog2", bid, PackageInfo("demo", "1.0", "1", "x86_64"), dup=1)
    assert dup.links[0].path == f"/usr/lib/.build-id/ab/{rest}.1"


def test_policy_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mydistro.yaml"
    f.write_text(DEBIAN.replace("name: debian", "name: mydistro"))
    assert load_policy(str(f)).name == "mydistro"


def _error(tmp_path: Path, text: str) -> PolicyError:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(str(f))
    return err.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("change, key, reason", [
    (("keep_symbols: none", "keep_symbols: none\nkeep_symbol: all"), "keep_symbol", "unknown key"),
    (("compress_debug_sections: zlib", "compress_debug_sections: lz4"), "compress_debug_sections", "not one of"),
    (("compress_debug_sections: zlib", "compress_debug_sections: zlib\ncompress_level: 11"), "compress_level",
     "a zlib level is 1 to 9"),
    (("debug_file_mode: 0644", "debug_file_mode: rw-r--r--"), "debug_file_mode", "expected an integer"),
    (("tool: binutils", "tool: [binutils]"), "tool", "expected a string"),
    (("{build_id_rest}.debug\"\ndebuglink", "{build_idrest}.debug\"\ndebuglink"), "debug_file", "unknown template field"),
    (("  executable: [--strip-all", "  executables: [--strip-all"), "strip.executables", "unknown key"),
    (("require_export_list: false", "require_export_list: maybe"), "require_export_list", "expected true or false"),
    (("debug_root: /usr/lib/debug", "debug_root: usr/lib/debug"), "debug_root", "absolute"),
])
def test_bad_policy_names_file_line_key(tmp_path: Path, change: tuple[str, str], key: str, reason: str) -> None:
    assert change[0] in DEBIAN
    text = DEBIAN.replace(change[0], change[1], 1)
    err = _error(tmp_path, text)
    assert err.key == key, str(err)
    assert reason in str(err)
    assert str(err).startswith(f"{tmp_path / 'bad.yaml'}:{err.line}:")
    assert err.line == _line_of(text, key.split(".")[-1] + ":"), str(err)
    assert "\n" not in str(err)


def test_missing_required_key(tmp_path: Path) -> None:
    err = _error(tmp_path, DEBIAN.replace("tool: binutils\n", ""))
    assert err.key == "tool" and "required" in str(err)


def test_invalid_yaml_has_line(tmp_path: Path) -> None:
    err = _error(tmp_path, "name: x\nstrip: [unclosed\n")
    assert "invalid YAML" in str(err) and err.line is not None


def test_unknown_policy_name() -> None:
    with pytest.raises(PolicyError, match="no policy named 'slackware'"):
        load_policy("slackware")


def test_template_fields_must_be_given(tmp_path: Path) -> None:
    from splitdebug.errors import SplitDebugError
    from splitdebug.layout import check_package_fields
    with pytest.raises(SplitDebugError, match="--version"):
        check_package_fields(load_policy("redhat"), PackageInfo())


def test_loaded_policy_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    import os
    f = tmp_path / "mine.yaml"
    f.write_text(DEBIAN.replace("name: debian", "name: first"))
    first = load_policy(str(f))
    assert load_policy(str(f)) is first  # SCons asks several times per binary: parsed once
    f.write_text(DEBIAN.replace("name: debian", "name: second-name"))
    os.utime(f, ns=(1, 1))
    assert load_policy(str(f)).name == "second-name"
