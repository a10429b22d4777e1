"""`splitdebug check`: does a staged tree satisfy its policy? Rules over plain data.

`survey` walks the tree once into a `model` (nothing followed) and reads each file's headers in worker
processes; `context` pairs shipped binaries with what the layout says; `rules/` holds the rules, one
module per group of ids (`findings` has the table); `run` ties them together; `formats` renders the
report. This module only hands the public names on.
"""

from .findings import ERROR, RULES, RULES_BY_ID, WARNING, Finding, Rule
from .formats import (FORMATS, JSON_VERSION, SCHEMA_FILE, as_json, as_sarif, render_github, render_json,
                      render_junit, render_sarif, render_text)
from .run import CheckReport, check_tree

__all__ = ["ERROR", "FORMATS", "JSON_VERSION", "RULES", "RULES_BY_ID", "SCHEMA_FILE", "WARNING", "CheckReport",
           "Finding", "Rule", "as_json", "as_sarif", "check_tree", "render_github", "render_json", "render_junit",
           "render_sarif", "render_text"]
