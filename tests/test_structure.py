"""The package's architecture, checked: no import circle, imports only run down the floors, no SCons
below the glue, packages' `__init__` only hand names on, and no module over 500 lines without a reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PKG = REPO / "site_scons" / "splitdebug"

# From the bottom up: a module may import from its own floor's package and from lower floors only.
FLOORS = {
    "errors": 0, "fs": 0, "__init__": 0,  # the package's __init__ holds only __version__
    "policy": 1, "elf": 1,
    "layout": 2, "ldflags": 2,
    "tree": 3, "exports": 3,
    "check": 4, "package": 4, "symbolize": 4, "debhelper": 4, "rpm": 4,
    "scons": 5, "cli": 5,
    "__main__": 6,
}
MAX_LINES = 500
WHOLE = "reads best whole"  # the docstring's reason for a longer module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every splitdebug module `name` imports (at any depth of its code), resolved to module names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "splitdebug"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "splitdebug":
                base = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("."):
                level = len(arg.value) - len(arg.value.lstrip("."))
                base_parts = package.split(".")[:len(package.split(".")) - level + 1]
                found.add(".".join(base_parts + [arg.value.lstrip(".")]))
    return {m for m in found if m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imports_of(name, path, known) if m in known} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def floor(name: str) -> int:
    part = name.split(".")[1] if "." in name else "__init__"
    return FLOORS[part]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_part_has_a_floor() -> None:
    assert {name.split(".")[1] for name in modules() if "." in name} <= set(FLOORS)


def test_no_import_circle() -> None:
    edges = graph()
    assert sum(len(v) for v in edges.values()) > 50  # the walk sees the imports at all
    assert cycles(edges) == []


def test_imports_run_down_the_floors() -> None:
    upward = [f"{name} -> {dep}" for name, deps in graph().items() for dep in sorted(deps)
              if floor(dep) > floor(name)]
    assert upward == []


@pytest.mark.parametrize("name", sorted(n for n in modules() if not n.startswith(("splitdebug.scons",))))
def test_only_the_scons_glue_imports_scons(name: str) -> None:
    tree = ast.parse(modules()[name].read_text())
    scons = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             and any(m.split(".")[0] == "SCons" for m in
                     ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]))]
    assert scons == [], name


@pytest.mark.parametrize("path", sorted(PKG.rglob("__init__.py")), ids=lambda p: module_name(p))
def test_package_init_only_hands_names_on(path: Path) -> None:
    tree = ast.parse(path.read_text())
    allowed = (ast.ImportFrom, ast.Import, ast.Expr, ast.Assign)
    for node in tree.body:
        assert isinstance(node, allowed), f"{path}: {ast.dump(node)[:80]}"
        if isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant), "only a docstring"
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            assert names in (["__all__"], ["__version__"]), names


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_size(name: str) -> None:
    path = modules()[name]
    lines = len(path.read_text().splitlines())
    if lines > MAX_LINES:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert WHOLE in doc, f"{path}: {lines} lines and no reason in its docstring"


def test_pip_install_gives_a_working_command(tmp_path: Path) -> None:
    """`pip install .` (not editable) ships every subpackage, the configs and the check schema."""
    import subprocess
    import sys

    src = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(REPO), str(src)], check=True)
    # The working tree's package, not only what is committed.
    subprocess.run(["rm", "-rf", str(src / "site_scons")], check=True)
    subprocess.run(["cp", "-a", str(REPO / "site_scons"), str(src / "site_scons")], check=True)
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    assert (target / "splitdebug" / "configs" / "debian.yaml").is_file()
    assert (target / "splitdebug" / "check" / "schema.json").is_file()
    for command in ("splitdebug", "dh_splitdebug"):  # [project.scripts]: what bootstrap puts on PATH
        assert (target / "bin" / command).is_file()
    assert (target / "splitdebug" / "configs" / "policy.schema.json").is_file()  # for editors, beside the configs
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    subprocess.run(["gcc", "-g", "-Wl,--build-id", "-o", str(root / "usr/bin/prog"), "-x", "c", "-"],
                   input="int main(void) { return 0; }\n", text=True, check=True)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    for argv in (["split", "--policy", "debian", str(root)], ["check", "--policy", "debian", str(root)]):
        proc = subprocess.run([sys.executable, "-m", "splitdebug", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, str(target / "bin/dh_splitdebug"), "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "dh_dwz and dh_strip" in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import splitdebug.check as c; print(c.SCHEMA_FILE)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.startswith(str(target))
