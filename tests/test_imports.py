"""The package's import graph (every `from ferkit... import` in src/ferkit, lazy ones included): no new import
circle at all (issue 26 removed the last known ones: cli <-> train and export <-> runtime)."""

import ast
from pathlib import Path

import ferkit

KNOWN_CIRCLES = []  # none: any circle fails test_no_new_import_circle


def import_graph() -> dict[str, set[str]]:
    root = Path(ferkit.__file__).parent
    name = lambda p: ("ferkit." + ".".join(p.relative_to(root).with_suffix("").parts)).replace(".__init__", "")  # noqa: E731
    modules = {name(p) for p in root.rglob("*.py")}
    graph = {}
    for path in root.rglob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ferkit"):
                deps |= {node.module} & modules
                deps |= {f"{node.module}.{a.name}" for a in node.names} & modules
        graph[name(path)] = deps - {"ferkit", name(path)}  # `from ferkit import x` runs an __init__ already run
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_new_import_circle():
    found = circles(import_graph())
    new = [c for c in found if c not in KNOWN_CIRCLES]
    assert not new, f"import circle(s): {new}"


def test_no_module_over_400_lines():
    """Issue 33: a module of more than ~400 lines has more than one job; split it (data.py was 491)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "src" / "ferkit"
    long = {str(p.relative_to(root)): n for p in root.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_imports_go_one_way_down_the_layers():
    """Issue 33: apps -> train -> analysis -> data -> pipeline -> runtime -> models -> base (ferkit.layers): no module
    imports from a higher layer, and every module has a layer (a new one must be placed)."""
    from ferkit.layers import LAYERS, layer_of

    graph, rank = import_graph(), layer_of()
    names = list(LAYERS)
    assert sorted(set(graph) - set(rank)) == []  # every module placed
    upward = sorted(f"{m} ({names[rank[m]]}) -> {d} ({names[rank[d]]})" for m, deps in graph.items() for d in deps
                    if rank[d] > rank[m])
    assert upward == []
