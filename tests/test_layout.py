"""The package's shape: import layers read from package prefixes, no import circles, no
oversized files, no two modules of one name.

Every module of ``src/mcsan`` is parsed with :mod:`ast`; every ``import`` counts, also those
inside functions and under ``TYPE_CHECKING``. A module's layer is the package it lives in
(see docs/ARCHITECTURE.md), bottom to top:

    0 core (and the ``mcsan`` constants)    1 data, model    2 world (clips need data.video)
    3 config    4 evaluate    5 inference    6 train    7 search, apps    8 cli

A module may import its own package and the layers below; data and model never import each
other, search and apps neither; training imports only the checkpoint format of inference.
"""

from __future__ import annotations

import ast
from collections import Counter
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "mcsan"
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 6

LAYERS: dict[str, tuple[int, tuple[str, ...]]] = {
    # group: (height, package prefixes)
    "core": (0, ("mcsan.core",)),
    "data": (1, ("mcsan.data",)),
    "model": (1, ("mcsan.model",)),
    "world": (2, ("mcsan.world",)),
    "config": (3, ("mcsan.config",)),
    "evaluate": (4, ("mcsan.evaluate",)),
    "inference": (5, ("mcsan.inference",)),
    "train": (6, ("mcsan.train",)),
    "search": (7, ("mcsan.search",)),
    "apps": (7, ("mcsan.apps",)),
    "cli": (8, ("mcsan.cli", "mcsan.commands", "mcsan.__main__")),
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    return {_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The module that ``name`` (a module or a name inside one) comes from."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports() -> dict[str, frozenset[str]]:
    """module -> the package modules it imports (anywhere in the file)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
                found.update(_resolve(n) for n in named if n == "mcsan" or n.startswith("mcsan."))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base == "mcsan" or base.startswith("mcsan."):
                    for alias in node.names:
                        full = f"{base}.{alias.name}"
                        found.add(full if full in known else _resolve(base))
        found.discard(None)
        found.discard(name)
        graph[name] = frozenset(found)
    return graph


def group(module: str) -> tuple[str, int]:
    """(group, height) of a module, from the package it lives in."""
    if module == "mcsan":
        return "core", 0
    for name, (height, prefixes) in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name, height
    raise AssertionError(f"{module} is in no layer: put it in a package (see LAYERS)")


def test_the_parser_sees_imports_everywhere() -> None:
    graph = imports()
    assert "mcsan.data.captions.parse" in graph["mcsan.data.loading.dataset"]  # top level
    assert "mcsan.inference.retriever" in graph["mcsan.commands.evaluate"]  # inside a function
    assert len(modules()) > 60


def test_no_import_cycles() -> None:
    graph = imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import circles: {cycles}"


def test_layers() -> None:
    wrong = []
    for source, targets in sorted(imports().items()):
        source_group, source_height = group(source)
        for target in sorted(targets):
            target_group, target_height = group(target)
            if target_group == source_group or target_height < source_height:
                continue
            wrong.append(f"{source} ({source_group}) imports {target} ({target_group})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_data_and_model_stay_apart() -> None:
    graph = imports()
    for source, targets in graph.items():
        if source.startswith("mcsan.data"):
            assert not [t for t in targets if group(t)[0] not in ("core", "data")], source
        if source.startswith("mcsan.model"):
            assert not [t for t in targets if t.startswith("mcsan.data")], source


def test_nothing_below_imports_the_cli() -> None:
    for source, targets in imports().items():
        if group(source)[0] != "cli":
            assert not [t for t in targets if group(t)[0] == "cli"], source


def test_no_file_over_the_limit() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_training_evaluates_without_inference() -> None:
    graph = imports()
    training = [m for m in graph if group(m)[0] == "train"]
    reached = {t for m in training for t in graph[m] if group(t)[0] == "inference"}
    assert reached <= {"mcsan.inference.checkpoint"}, reached
    assert any("mcsan.evaluate.split" in graph[m] for m in training)


def test_every_module_is_in_a_layer_and_the_top_level_is_small() -> None:
    for module in modules():
        group(module)
    top = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for path in PACKAGE.rglob("__init__.py"):
        if path.parent == PACKAGE or path.parent.name == "presets":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{path} has no docstring"
        if path.parent.parent == PACKAGE:
            assert "May import" in doc, f"{path}: say what the package may import"


def test_no_two_modules_share_a_name() -> None:
    """Commands are named after their subcommands and are left out."""
    names = Counter(
        path.stem for path in PACKAGE.rglob("*.py")
        if path.stem != "__init__" and path.parent.name != "commands"
    )
    assert not [n for n, c in names.items() if c > 1], names.most_common(5)
