"""A small mutation runner: does a test subset notice when one operator of a module is wrong?

    python3 tests/mutation.py MODULE... [--function NAME ...] [--sample N] [--seed S] [--jobs J]
                              [--json OUT] -- PYTEST_ARGS...

Each MODULE is a path under site_scons/. Each mutant changes one place, one classic operator at a time:
  compare   < <=, > >=, == !=, in / not in, is / is not (each to its neighbour or negation)
  arith     + -, * /, // *, % //, << >>, & |, ^ &  (also in augmented assignments)
  boolean   and / or swapped, `not` removed, True / False swapped
  constant  an integer n becomes n + 1; a string or bytes s becomes "XX" + s + "XX"
  return    `return X` becomes `return None`
Docstrings, annotations and the strings of f-strings and `raise` statements (messages) are left alone.
With --sample N, N mutants of each module are drawn (random.Random(seed)) when it has more.

Each worker works on its own copy of the checkout's HEAD (git archive) under /tmp (the tests find the package next to
themselves, so subprocesses run the mutant too), writes one mutant at a time, runs pytest -x on
PYTEST_ARGS with bytecode caching off (a mutant of the same size and second would reuse a stale .pyc),
and puts the original back. The unmutated copy must pass first. A run that fails or exceeds
3 x the baseline time (+30 s) kills the mutant. Not part of the suite: it takes minutes per module.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BIN_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv, ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitAnd, ast.Pow: ast.Mult}


@dataclass
class Mutant:
    index: int
    line: int
    kind: str
    before: str
    after: str
    # (start line, start col, end line, end col) of the source replaced, and the replacement
    span: tuple[int, int, int, int]
    text: str
    status: str = ""
    seconds: float = 0.0
    failed: str = ""
    module: str = ""


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations, f-string parts, raise statements."""
    skip: set[int] = set()

    def drop(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                drop(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            drop(node.returns)
        elif isinstance(node, ast.arg):
            drop(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        elif isinstance(node, (ast.JoinedStr, ast.Raise)):
            drop(node)
    return skip


def _in_functions(tree: ast.Module, names: set[str]) -> set[int]:
    keep: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            keep.update(id(n) for n in ast.walk(node))
    return keep


def _variants(node: ast.AST) -> list[tuple[str, ast.AST]]:
    """(kind, replacement node) for each mutation of `node` itself."""
    out: list[tuple[str, ast.AST]] = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAP:
                ops = list(node.ops)
                ops[i] = CMP_SWAP[type(op)]()
                out.append(("compare", ast.Compare(node.left, ops, node.comparators)))
    elif isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAP:
        out.append(("arith", ast.BinOp(node.left, BIN_SWAP[type(node.op)](), node.right)))
    elif isinstance(node, ast.AugAssign) and type(node.op) in BIN_SWAP:
        out.append(("arith", ast.AugAssign(node.target, BIN_SWAP[type(node.op)](), node.value)))
    elif isinstance(node, ast.BoolOp):
        out.append(("boolean", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("boolean", node.operand))
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            out.append(("boolean", ast.Constant(not v)))
        elif isinstance(v, int):
            out.append(("constant", ast.Constant(v + 1)))
        elif isinstance(v, str):
            out.append(("constant", ast.Constant("XX" + v + "XX")))
        elif isinstance(v, bytes):
            out.append(("constant", ast.Constant(b"XX" + v + b"XX")))
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        out.append(("return", ast.Return(ast.Constant(None))))
    return out


def enumerate_mutants(source: str, functions: set[str]) -> list[Mutant]:
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    keep = _in_functions(tree, functions) if functions else None
    mutants: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skip or (keep is not None and id(node) not in keep) or not hasattr(node, "end_lineno"):
            continue
        before = ast.get_source_segment(source, node) or ""
        for kind, new in _variants(node):
            stmt = isinstance(node, ast.stmt)
            text = ast.unparse(new)
            # an expression in parentheses may stand anywhere and span lines; a statement keeps its indent
            text = text if stmt else f"({text})"
            span = (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)
            mutants.append(Mutant(0, node.lineno, kind, before.splitlines()[0][:70], text[:70], span, text))
    mutants.sort(key=lambda m: (m.span, m.kind, m.text))
    for i, m in enumerate(mutants):
        m.index = i
    return mutants


def apply(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    sl, sc, el, ec = m.span
    # col offsets are UTF-8 byte offsets
    head = lines[sl - 1].encode()[:sc].decode()
    tail = lines[el - 1].encode()[ec:].decode()
    return "".join(lines[:sl - 1]) + head + m.text + tail + "".join(lines[el:])


def run_tests(copy: Path, pytest_args: list[str], timeout: float) -> tuple[int, float, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
            f"--basetemp={copy}.pt", *pytest_args]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return -1, time.monotonic() - start, "timeout"
    failed = [ln.split(" - ")[0] for ln in out.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    return proc.returncode, time.monotonic() - start, failed[0] if failed else out.strip().splitlines()[-1:][0]


def make_copy(dest: Path, commit: str) -> Path:
    """The checkout at `commit` (what is measured is committed, and later edits do not leak in)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("module", nargs="+", help="path of a module, e.g. site_scons/splitdebug/layout.py")
    ap.add_argument("--function", action="append", default=[], help="mutate only in this function or class")
    ap.add_argument("--sample", type=int, default=0, help="draw this many mutants per module when there are more")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", type=int, action="append", default=[], help="run only the mutant of this index")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/splitdebug-mutation"))
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.pytest_args = argv[cut + 1:]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    sources: dict[str, str] = {}
    totals: dict[str, int] = {}
    mutants: list[Mutant] = []
    for module in args.module:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{module}"], check=True,
                                capture_output=True, text=True).stdout
        found = enumerate_mutants(source, set(args.function))
        for m in found:
            m.module = module
        sources[module], totals[module] = source, len(found)
        if args.only:
            found = [m for m in found if m.index in args.only]
        elif args.sample and len(found) > args.sample:
            found = sorted(random.Random(args.seed).sample(found, args.sample), key=lambda m: m.index)
        for m in found:
            try:
                compile(apply(source, m), module, "exec")
                mutants.append(m)
            except SyntaxError:
                pass
    if args.list:
        for m in mutants:
            print(f"#{m.index} {m.module}:{m.line} {m.kind}: {m.before!r} -> {m.after!r}")
        return 0
    if not args.pytest_args:
        ap.error("no tests given after --")
    args.workdir.mkdir(parents=True, exist_ok=True)
    copies = [make_copy(args.workdir / f"w{i}", commit) for i in range(max(1, args.jobs))]
    code, base, last = run_tests(copies[0], args.pytest_args, 3600)
    if code != 0:
        print(f"the unmutated tests fail ({last}): fix them first", file=sys.stderr)
        return 2
    timeout = 3 * base + 30
    print(f"at {commit}: {totals} mutants, running {len(mutants)}; baseline {base:.1f} s", flush=True)

    free = list(copies)

    def one(m: Mutant) -> Mutant:
        copy = free.pop()
        try:
            (copy / m.module).write_text(apply(sources[m.module], m))
            rc, m.seconds, m.failed = run_tests(copy, args.pytest_args, timeout)
            m.status = "survived" if rc == 0 else "killed"
        finally:
            (copy / m.module).write_text(sources[m.module])
            free.append(copy)
        print(f"{m.status:8} #{m.index} {m.module}:{m.line} {m.kind}: {m.before!r} -> {m.after!r}"
              f" ({m.seconds:.0f} s{'; ' + m.failed if m.status == 'killed' else ''})", flush=True)
        return m

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
        done = list(pool.map(one, mutants))
    for module in args.module:
        ran = [m for m in done if m.module == module]
        killed = sum(m.status == "killed" for m in ran)
        print(f"{module}: {totals[module]} mutants, {len(ran)} run, {killed} killed, {len(ran) - killed} survived")
    if args.json:
        args.json.write_text(json.dumps({"modules": totals, "commit": commit, "seed": args.seed,
                                         "sample": args.sample, "pytest_args": args.pytest_args,
                                         "mutants": [asdict(m) for m in done]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
