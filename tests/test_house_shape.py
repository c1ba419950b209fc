"""The house's shape, kept by machine: no module over 450 lines, and no import cycle inside any package.

The import-linter contracts (pyproject.toml) keep the layers between packages and the console's floors; these
two facts hold for every package, type-checking imports included, since a cycle there is a cycle a reader
follows all the same.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
LONGEST = 450


def _cycle_in(imports: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among ``imports`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(imports[module]):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(imports):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle_in({"a": {"b"}, "b": set()}) is None


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(graph: grimp.ImportGraph, package: str) -> None:
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    imports = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    assert _cycle_in(imports) is None, f"{package} has an import cycle: {' -> '.join(_cycle_in(imports) or [])}"


def test_no_module_over_450_lines() -> None:
    sources = [p for package in [*PACKAGES, "benchmarks"] for p in (ROOT / package).rglob("*.py")]
    assert sources, "no sources found"
    longer = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text().splitlines())) > LONGEST}
    assert not longer, f"modules over {LONGEST} lines: {longer}"
