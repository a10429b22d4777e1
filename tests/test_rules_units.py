"""Check rules' small parsers against literal inputs. Written for the survivors of tests/MUTATION.md
(check/rules/build_ids.py:70)."""

from __future__ import annotations

from splitdebug.check.rules.build_ids import _note_problem

WANTED = ["type", "name"]


def test_package_note_padding_is_only_nul() -> None:
    """The note's descriptor is padded with NULs, which are not part of the JSON; anything else after
    the object is (systemd's reader refuses it)."""
    assert _note_problem(b'{"type":"rpm","name":"demo"}\0\0\0', WANTED) is None
    assert _note_problem(b'{"type":"rpm","name":"demo"}X\0\0', WANTED) is not None
    assert _note_problem(b'{"type":"rpm"}\0', WANTED) is not None
