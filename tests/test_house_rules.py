"""The house's size and layering rules, checked on the code itself: no file over 400 lines, no
function over 60, ``bench/`` at most 4,000 lines, no import loop between modules or between the
top-level packages, whose layering is ``upsample`` below ``seg`` and ``gan`` below the app."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("upsample", "upsample_app", "seg", "gan", "bench")
MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_BENCH_LINES = 400, 60, 4000
#: top-level package -> the packages it may import
ALLOWED_IMPORTS = {
    "upsample": set(),
    "seg": {"upsample"},
    "gan": {"upsample"},
    "upsample_app": {"upsample", "seg", "gan"},
    "bench": {"upsample", "seg", "gan", "upsample_app"},
}


def python_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` anywhere in the file names (lazy imports included), with
    ``from package import name`` also counted as ``package.name``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_file_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in python_files()
        if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"split by purpose: {long}"


def test_no_function_over_60_lines() -> None:
    long = {}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.name}"] = lines
    assert not long, long


def test_bench_stays_under_its_size() -> None:
    lines = sum(len(path.read_text().splitlines()) for path in (REPO / "bench").rglob("*.py"))
    assert lines <= MAX_BENCH_LINES, lines


def test_top_level_packages_import_only_downwards() -> None:
    wrong = set()
    for path in python_files():
        package = module_name(path).split(".")[0]
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in ALLOWED_IMPORTS and top != package and top not in ALLOWED_IMPORTS[package]:
                wrong.add(f"{module_name(path)} -> {name}")
    assert not wrong, sorted(wrong)


def test_no_import_loop_between_modules() -> None:
    modules = {module_name(path): path for path in python_files()}
    graph = defaultdict(set)
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    loops = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                loops.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert not loops, loops
