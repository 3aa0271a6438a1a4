"""The house's size rules for ``bench/``: a budget of Python lines in total (the project allows
4,000 and keeps the rest for the benchmarks to come), small files, short functions, and imports
between its modules that never go round in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
MAX_TOTAL_LINES = 3400
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, ast.Module]:
    """Every module of ``bench`` by dotted name, parsed."""
    return {
        ".".join(path.relative_to(BENCH.parent).with_suffix("").parts): ast.parse(path.read_text())
        for path in sorted(BENCH.rglob("*.py"))
    }


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_bench_stays_within_its_line_budget() -> None:
    total = sum(lines(path) for path in BENCH.rglob("*.py"))
    assert total <= MAX_TOTAL_LINES, f"bench/ holds {total} lines of Python"


def test_no_file_is_too_long() -> None:
    long = {p.name: lines(p) for p in BENCH.rglob("*.py") if lines(p) > MAX_FILE_LINES}
    assert not long, f"over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_too_long() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"over {MAX_FUNCTION_LINES} lines: {long}"


def imported_modules(tree: ast.Module, known: set[str]) -> set[str]:
    """The ``bench`` modules that ``tree`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & known


def test_bench_modules_import_each_other_without_a_loop() -> None:
    trees = modules()
    graph = {name: imported_modules(tree, set(trees)) - {"bench"} for name, tree in trees.items()}
    finished: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import loop: " + " -> ".join([*path[path.index(name) :], name]))
        if name not in finished:
            for imported in sorted(graph[name]):
                visit(imported, [*path, name])
            finished.add(name)

    for name in graph:
        visit(name, [])
