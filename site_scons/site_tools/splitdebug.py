"""SCons tool `splitdebug`: env.Tool('splitdebug') or tools=['default', 'splitdebug'].

Thin glue; the logic is the importable package `splitdebug` in the directory above.
"""

import importlib
import importlib.util
import os
import sys


def _package():
    # SCons registers a tool module in sys.modules under the tool's name, which here is also the
    # package's name: put the package back so `import splitdebug` keeps meaning the package.
    this = sys.modules.get(__name__)
    current = sys.modules.get("splitdebug")
    if current is None or current is this or not hasattr(current, "__path__"):
        # While a tool loads, site_tools/ is first on sys.path: name the package's file explicitly.
        pkg_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "splitdebug")
        spec = importlib.util.spec_from_file_location(
            "splitdebug", os.path.join(pkg_dir, "__init__.py"), submodule_search_locations=[pkg_dir])
        current = importlib.util.module_from_spec(spec)
        sys.modules["splitdebug"] = current
        spec.loader.exec_module(current)
    return current


_scons_tool = importlib.import_module(_package().__name__ + ".scons.tool")


def generate(env):
    _scons_tool.generate(env)


def exists(env):
    return _scons_tool.exists(env)
