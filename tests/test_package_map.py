"""The package map of docs/DESIGN.md, kept: imports run down the layers, never up, never in a circle.

Every ``import`` counts, the ones inside functions too (a lazy import is still an arrow). A module
may import from its own layer or from a lower one; two layers of the same rank (the fast level's
coder beside the next one) do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("lmgc_format", "lmgc", "lmgc_tui")
# (layer, rank): the first prefix that matches a module names its layer. Keep in step with DESIGN.md.
LAYERS: tuple[tuple[str, str, int], ...] = (
    ("lmgc_format.errors", "base", 0),
    ("lmgc_format.events", "base", 0),
    ("lmgc_format.atomic", "base", 0),
    ("lmgc_format.tensors", "tensors", 1),
    ("lmgc_format.transforms", "transforms", 2),
    ("lmgc_format.container", "container", 3),
    ("lmgc_format.cm", "cm", 4),
    ("lmgc_format.lm", "lm", 5),
    ("lmgc_format.pipeline", "pipeline", 6),
    ("lmgc_format.api", "faces", 7),
    ("lmgc_format.inspect", "faces", 7),
    ("lmgc_format.safe", "faces", 7),
    ("lmgc_format.bare", "faces", 7),
    ("lmgc_format.bench", "faces", 7),
    ("lmgc_tui", "app", 8),
    ("lmgc", "lmgc", 8),
)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules that ``name`` imports anywhere in its text."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name and m not in PACKAGES}


def layer(name: str) -> tuple[str, int]:
    for prefix, key, rank in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            return key, rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and to docs/DESIGN.md's package map")


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def test_every_module_has_a_layer() -> None:
    for name in GRAPH:
        if name not in PACKAGES:
            layer(name)


def test_no_import_runs_up_a_layer() -> None:
    bad = []
    for name, deps in GRAPH.items():
        if name in PACKAGES:
            continue
        key, rank = layer(name)
        for dep in deps:
            dep_key, dep_rank = layer(dep)
            if dep_key != key and dep_rank >= rank:
                bad.append(f"{name} ({key}) imports {dep} ({dep_key})")
    assert not bad, "\n".join(sorted(bad))


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of imports, or [] (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_circle_of_imports() -> None:
    assert cycle(GRAPH) == [], " -> ".join(cycle(GRAPH))


@pytest.mark.parametrize(
    ("graph", "circle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
    ],
)
def test_the_circle_finder_finds_circles(graph: dict[str, set[str]], circle: list[str]) -> None:
    assert cycle(graph) == circle


def test_the_map_sees_lazy_imports(tmp_path: Path) -> None:
    code = "def f():\n    from lmgc_format.pipeline import encoder\n"
    path = tmp_path / "m.py"
    path.write_text(code)
    assert imports("lmgc_format.tensors.m", path, modules()) == {"lmgc_format.pipeline.encoder"}


def test_design_md_lists_every_package_and_module() -> None:
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    for path in sorted((ROOT / "lmgc_format").rglob("*.py")):
        if path.name == "__init__.py":
            folder = path.parent.relative_to(ROOT / "lmgc_format")
            assert str(folder) == "." or f"`{folder}/`" in text, f"docs/DESIGN.md's package map misses {folder}/"
        else:
            assert f"`{path.name}`" in text, f"docs/DESIGN.md's package map misses {path.relative_to(ROOT)}"


def test_no_module_over_450_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for top in (*PACKAGES, "tests", "scripts", "corpus", "samples", "examples")
        for p in (ROOT / top).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    ]
    assert not long, long


def test_benchmarks_md_holds_current_numbers_only() -> None:
    """BENCHMARKS.md keeps today's numbers, each with its command; history lives in docs/EXPERIMENTS.md."""
    assert len((ROOT / "BENCHMARKS.md").read_text().splitlines()) <= 400
