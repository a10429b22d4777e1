"""List, show and validate distribution policies (configs/*.yaml, or a YAML file of your own).

`list`: the shipped policies and their descriptions. `show NAME|FILE`: the policy as loaded, every
default written out, as YAML (a policy file that loads the same). `validate FILE…`: exit 0 when every
file is a valid policy, 1 with one `file:line: key 'x': reason` line per bad file. `schema`: the path
of the JSON Schema of policy files (for editors: `# yaml-language-server: $schema=<path>`).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import PolicyError, SplitDebugError, printable
from ..policy import available_policies, configs_dir, dump_policy, load_policy

SCHEMA_NAME = "policy.schema.json"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="the shipped policies and their descriptions")
    show = sub.add_parser("show", help="the resolved policy, defaults included, as YAML")
    show.add_argument("policy", metavar="NAME|FILE")
    validate = sub.add_parser("validate", help="check policy files: file:line errors, exit 1")
    validate.add_argument("files", nargs="+", metavar="FILE")
    sub.add_parser("schema", help="the path of the policy files' JSON Schema")


def execute(args: argparse.Namespace) -> int:
    action: str = args.action
    if action == "list":
        for name in available_policies():
            try:
                print(f"{name:<10} {load_policy(name).description}")
            except PolicyError as err:  # a broken shipped file must not hide the others
                print(f"{name:<10} (invalid: {printable(str(err))})")
        return 0
    if action == "show":
        sys.stdout.write(dump_policy(load_policy(args.policy)))
        return 0
    if action == "schema":
        print(configs_dir() / SCHEMA_NAME)
        return 0
    return _validate(args.files)


def _validate(files: list[str]) -> int:
    bad = 0
    for path in files:
        if not os.path.isfile(path):
            raise SplitDebugError(f"{path}: no such file")
        try:
            policy = load_policy(os.path.abspath(path))
        except PolicyError as err:
            bad += 1
            print(printable(str(err).replace(os.path.abspath(path), path, 1)), file=sys.stderr)
            continue
        print(f"{path}: valid policy {policy.name!r}")
    return 1 if bad else 0
