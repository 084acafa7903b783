"""The package's import graph (every `from ferkit... import`, `import ferkit...` and `import_module("ferkit...")` in
src/ferkit, lazy ones included): no new import circle at all (issue 26 removed the last known ones: cli <-> train
and export <-> runtime)."""

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
            elif isinstance(node, ast.Import):  # import ferkit.pipeline.recognize
                deps |= {a.name for a in node.names} & modules
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) ==
                  "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
                deps |= {node.args[0].value} & modules  # importlib.import_module("ferkit.x")
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
    """Issue 33: apps -> train -> analysis -> data -> pipeline -> runtime -> models -> core (ferkit.architecture): no module
    imports from a higher layer, and every module has a layer (a new top-level module must be placed)."""
    from ferkit.architecture import LAYERS, layer_of

    graph, names = import_graph(), list(LAYERS)
    rank = {m: layer_of(m) for m in graph}
    assert sorted(m for m, r in rank.items() if r is None) == []  # every module placed
    upward = sorted(f"{m} ({names[rank[m]]}) -> {d} ({names[rank[d]]})" for m, deps in graph.items() for d in deps
                    if rank[d] > rank[m])
    assert upward == []


def test_the_folders_are_the_layers():
    """Issue 33: every subpackage is a layer of its own (or, for weights, part of one), and the top level holds only
    the applications ferkit.architecture lists: the folder a module sits in says which layer it is."""
    from ferkit.architecture import LAYERS, layer_of

    root = Path(ferkit.__file__).parent
    folders = sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists())
    entries = {e for group in LAYERS.values() for e in group}
    assert [f for f in folders if f not in entries] == []
    top_level = sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__")
    assert [m for m in top_level if layer_of(f"ferkit.{m}") != list(LAYERS).index("apps")] == []
    assert layer_of("ferkit.runtime.detect") == list(LAYERS).index("runtime")
    assert layer_of("ferkit.train.__main__") == list(LAYERS).index("apps")
    assert layer_of("ferkit.newmodule") is None  # an unplaced top-level module fails the test above


def test_old_import_paths_of_moved_names_still_work():
    """Issue 33: ``ferkit.runtime`` and ``ferkit.data`` became folders; their old names still import from them, and
    the applications users import (ferkit.video, serve, batch, adapt, train) stay where they were."""
    from ferkit.data import FerData, load_fer2013
    from ferkit.data.fer2013 import load_fer2013 as new_load
    from ferkit.runtime import Classifier
    from ferkit.runtime.classifier import Classifier as NewClassifier

    assert Classifier is NewClassifier and load_fer2013 is new_load and FerData.__module__ == "ferkit.data.fer2013"
    import ferkit.adapt
    import ferkit.batch
    import ferkit.serve
    import ferkit.train
    import ferkit.video

    assert callable(ferkit.video.stream) and callable(ferkit.serve.create_app) and callable(ferkit.adapt.finetune)
    assert callable(ferkit.train.train) and callable(ferkit.batch.predict_dataset)
    from ferkit.data import read_photo_set, relabel  # names of the old ferkit.data that moved beside it

    assert relabel.__module__ == "ferkit.data.ferplus" and read_photo_set.__module__ == "ferkit.data.photoset"
    star: dict = {}
    exec("from ferkit.data import *\nfrom ferkit.runtime import *", star)  # noqa: S102
    assert star["load_fer2013"] is load_fer2013 and star["Classifier"] is Classifier
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ferkit.runtime.nothing  # noqa: B018


def test_the_table_of_moved_modules_matches_the_package_and_rewrites_old_imports():
    """Issue 33: ferkit.architecture.MOVED (CHANGELOG.md's table) names every moved module's real new home, no old
    flat file is left behind, an old path fails naming the new one, and tools/moved_modules.py's rewrite turns a
    user's old imports into working new ones, once."""
    import importlib
    import sys

    import pytest

    from ferkit.architecture import MOVED

    root = Path(ferkit.__file__).parent
    changelog = (root.parent.parent / "CHANGELOG.md").read_text()
    for old, new in MOVED.items():
        assert (root / (new.replace(".", "/") + ".py")).exists(), new
        assert not (root / (old.replace(".", "/") + ".py")).exists(), old
        assert f"| `ferkit.{old}` | `ferkit.{new}`" in changelog
    with pytest.raises(ModuleNotFoundError, match="'ferkit.recognize': it moved to 'ferkit.pipeline.recognize'"):
        importlib.import_module("ferkit.recognize")
    with pytest.raises(ModuleNotFoundError, match=r"^No module named 'ferkit.nothing'$"):
        importlib.import_module("ferkit.nothing")
    with pytest.raises(ImportError, match="'recognize' from 'ferkit': the module moved to 'ferkit.pipeline.recognize'"):
        exec("from ferkit import recognize")  # noqa: S102  Python's from-import would hide the finder's message

    sys.path.insert(0, str(root.parent.parent / "tools"))
    try:
        from moved_modules import rewrite
    finally:
        sys.path.pop(0)
    script = ("from ferkit import preprocess, Recognizer\nfrom ferkit.recognize import LOW_CONFIDENCE\n"
              "import ferkit.spec as spec\nfrom ferkit.data import relabel, load_fer2013  # old\n"
              "from ferkit.runtime import detect\n")
    new = rewrite(script)
    assert new == ("from ferkit.runtime import preprocess\nfrom ferkit import Recognizer\n"
                   "from ferkit.pipeline.recognize import LOW_CONFIDENCE\nimport ferkit.runtime.spec as spec\n"
                   "from ferkit.data.ferplus import relabel  # old\nfrom ferkit.data.fer2013 import load_fer2013\n"
                   "from ferkit.runtime import detect\n")
    assert rewrite(new) == new
    unchanged = "from ferkit import data, runtime\nimport ferkit.data\nferkit.runtime.detect\n"  # new code, or served
    assert rewrite(unchanged) == unchanged
    warnings: list = []
    continued = "from ferkit import labels, \\\n    images\n"
    assert rewrite(continued, warnings) == continued and "backslash" in warnings[0]  # left, and said
    namespace: dict = {}
    exec(compile(new, "<rewritten>", "exec"), namespace)  # noqa: S102  the rewritten imports resolve
    assert namespace["relabel"] is importlib.import_module("ferkit.data.ferplus").relabel
