"""`splitdebug policy list|show|validate|schema`, and the JSON Schema of policy files shipped beside
the configs: every shipped policy is valid against it, and a wrong key or type fails it and `validate`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO, run_cli
from splitdebug import policy as policies
from splitdebug.policy import available_policies, load_policy, parse_policy

SCHEMA_PATH = REPO / "configs/policy.schema.json"
SHIPPED = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
MINIMAL = """\
name: mini
debug_root: /usr/lib/debug
debug_file: "{debug_root}/{path}.debug"
keep_symbols: none
tool: binutils
strip: {executable: [], shared_library: [], static_archive: null}
"""


def schema() -> dict[str, object]:
    doc: dict[str, object] = json.loads(SCHEMA_PATH.read_text())
    return doc


def test_list_names_every_config_with_its_description() -> None:
    proc = run_cli("policy", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == SHIPPED == available_policies()
    for line in lines:
        name = line.split()[0]
        assert line.split(None, 1)[1] == load_policy(name).description


@pytest.mark.parametrize("name", SHIPPED)
def test_show_is_a_policy_file_that_loads_the_same(tmp_path: Path, name: str) -> None:
    proc = run_cli("policy", "show", name)
    assert proc.returncode == 0, proc.stderr
    shown = tmp_path / "shown.yaml"
    shown.write_text(proc.stdout)
    again = load_policy(shown)
    assert dataclasses.replace(again, source=load_policy(name).source) == load_policy(name)
    jsonschema.validate(yaml.safe_load(proc.stdout), schema())
    assert run_cli("policy", "validate", shown).returncode == 0


def test_show_writes_the_defaults_out(tmp_path: Path) -> None:
    mini = tmp_path / "mini.yaml"
    mini.write_text(MINIMAL)
    proc = run_cli("policy", "show", mini)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert set(doc) == set(policies.TOP_KEYS)
    assert (doc["compress_level"], doc["debug_file_mode"], doc["dwz"], doc["build_id_bytes"]) == (6, 0o644, "none", [20])
    assert "debug_file_mode: 0644\n" in proc.stdout  # octal, as the files write it


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_is_valid_against_the_schema(name: str) -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.validate(yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text()), schema())
    proc = run_cli("policy", "validate", REPO / "configs" / f"{name}.yaml")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


BAD = [  # (change to MINIMAL, line, key)
    ("compres_level: 3\n", 7, "compres_level"),                 # unknown key (a typo)
    ("compress_level: high\n", 7, "compress_level"),            # wrong type
    ("tool: gnu\n", 5, "tool"),                                  # not one of the choices (replaces tool)
    ("require_export_list: 'yes'\n", 7, "require_export_list"),  # a string, not a boolean
    ("gdb_index: 'yes'\n", 7, "gdb_index"),                      # likewise
    ("build_id_links: [{link: '{debug_root}/.build-id/{build_id}', target: binary, relativ: x}]\n", 7,
     "build_id_links.relativ"),
]


@pytest.mark.parametrize(("change", "line", "key"), BAD)
def test_a_wrong_key_or_type_fails_the_schema_and_validate(tmp_path: Path, change: str, line: int, key: str) -> None:
    text = MINIMAL.replace("tool: binutils\n", change) if change.startswith("tool:") else MINIMAL + change
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), schema())
    proc = run_cli("policy", "validate", bad)
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith(f"{bad}:{line}: key {key!r}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_reports_each_bad_file_and_missing_files_are_usage_errors(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL.replace("keep_symbols: none\n", ""))
    proc = run_cli("policy", "validate", good, bad)
    assert proc.returncode == 1 and proc.stdout == f"{good}: valid policy 'mini'\n"
    assert proc.stderr == f"{bad}:1: key 'keep_symbols': required key is missing\n"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(bad.read_text()), schema())
    proc = run_cli("policy", "validate", tmp_path / "absent.yaml")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such file" in proc.stderr


def test_schema_says_what_the_loader_reads() -> None:
    """Every key, required key and choice of the loader is the schema's, so neither drifts."""
    doc = schema()
    props = doc["properties"]
    assert isinstance(props, dict)
    assert list(props) == list(policies.TOP_KEYS)
    assert doc["required"] == [k for k, required in policies.TOP_KEYS.items() if required]
    assert doc["additionalProperties"] is False
    for key, choices in (("keep_symbols", policies.KEEP_SYMBOLS), ("tool", policies.TOOLS),
                         ("compress_debug_sections", policies.COMPRESSIONS), ("dwz", policies.DWZ_MODES),
                         ("duplicate_build_id", policies.DUPLICATES), ("package_format", policies.PACKAGE_FORMATS),
                         ("symlinked_binaries", policies.SYMLINKED), ("dwz_altlink", policies.DWZ_ALTLINKS),
                         ("missing_build_id", policies.MISSING_BUILD_ID)):
        assert props[key]["enum"] == list(choices), key
    link = props["build_id_links"]["items"]
    assert set(link["properties"]) == set(policies.LINK_KEYS) and link["additionalProperties"] is False
    assert link["properties"]["relative"]["enum"] == list(policies.LINK_STYLES)
    assert set(props["strip"]["properties"]) == set(policies.KINDS)
    assert run_cli("policy", "schema").stdout.strip() == str(policies.configs_dir() / "policy.schema.json")
    parse_policy(MINIMAL, "mini")  # the schema's minimal example is a policy
