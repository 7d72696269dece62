"""The house's import rules, read from the code itself (every import statement, function-local ones included):
bench's packages import only the layers below their own (bench/__init__.py lists them), no import circle among
the modules of bench/ and models/, and models/ (the model library) imports nothing of the harness."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.config import PROJECT_ROOT

PACKAGES = ("bench", "models")
# bottom to top; a module may import its own layer and those below; models/ sits below all of bench/
LAYERS = (("models",), ("bench.errors",), ("bench.config",), ("bench.tracking",), ("bench.data",), ("bench.protocol",), ("bench.engine",),
          ("bench.evaluation",), ("bench.existing",), ("bench.pipeline",), ("bench.report", "bench.tuning", "bench.perf"),
          ("bench.__main__", "bench.api", "bench"))


def layer(module: str) -> int:
    """The index in LAYERS of the longest prefix naming `module`'s package."""
    best, found = -1, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), i
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its file (`from a.b import c` counts a.b.c when c is a
    module, else a.b)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {d for a in node.names if (d := known(a.name))}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps |= {d for a in node.names if (d := known(f"{node.module}.{a.name}") or known(node.module))}
        graph[name] = deps - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_circles_are_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_models_import_nothing_of_the_harness() -> None:
    graph = import_graph()
    assert {(m, d) for m, deps in graph.items() if m.startswith("models") for d in deps if d.startswith("bench")} == set()
    assert "models.recbole_compat" in graph["models.backbones.recbole_seq"]  # RecBole through its layer, in models/


def test_imports_only_go_down() -> None:
    graph = import_graph()
    assert all(layer(m) >= 0 for m in graph), [m for m in graph if layer(m) < 0]
    upward = sorted((m, d) for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert upward == []


def test_the_root_of_bench_holds_only_the_entry_points_and_the_errors() -> None:
    """The command line (__main__), the Python API (api) and the errors every layer raises."""
    assert sorted(p.name for p in (PROJECT_ROOT / "bench").glob("*.py")) == ["__init__.py", "__main__.py", "api.py",
                                                                            "errors.py"]
