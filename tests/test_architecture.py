"""The package's shape, checked: no import cycle, no upward import, no module past 600 lines.

Imports are read from the source (AST), lazy ones inside functions included: a lazy import that
goes upward is still a dependency, only a deferred one. Layers, lowest first: a module may
import its own layer and those below, never one above.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "confindex"

LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["errors", "timefmt", "sanitize", "log", "safeio", "stagetime"]),
    (
        "data",
        [
            *("store", "store.workspace", "store.stages", "store.transcript"),
            *("store.ledger", "store.ledger_rows"),
        ],
    ),
    ("config", ["config"]),
    # Pure renderers, speech and search only read the data layer (and each other, acyclically).
    (
        "stages",
        [*("speech", "speech.*", "formats", "formats.*", "search", "search.*"), "evaluation.der"],
    ),
    # The one writer and the workspace-wide views built on it.
    ("store", ["store.*"]),
    ("run", ["run", "run.*", "evaluation", "evaluation.*"]),
    ("api", ["api", "results"]),
    ("ui", ["cli", "cli.*", "web", "web.*", "__main__"]),
]
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    mods = {}
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _layer(mod: str) -> int:
    if mod == "":  # the package itself (confindex/__init__.py) re-exports Archive
        return _layer("api")
    # A module named exactly wins over a pattern: store.transcript is "data", store.x "store".
    for i, (_, patterns) in enumerate(LAYERS):
        if mod in patterns:
            return i
    for i, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(mod, pat) for pat in patterns):
            return i
    raise AssertionError(f"confindex.{mod} is in no layer of tests/test_architecture.py")


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        pkg = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".")
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                    m = ".".join([*base, *([node.module] if node.module else [])])
                elif node.module and (node.module + ".").startswith("confindex."):
                    m = node.module[len("confindex.") :] if node.module != "confindex" else ""
                else:
                    continue
                targets = [m, *((m + "." if m else "") + a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name[len("confindex.") :] for a in node.names]
                targets = [t for t in targets if t in mods]
            for t in targets:
                if t in mods and t != mod and t != "":
                    deps[mod].add(t)
    return deps


def _cycles(deps: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _imports(_modules())


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_no_upward_import(graph):
    upward = [
        f"confindex.{a} ({LAYERS[_layer(a)][0]}) imports confindex.{b} ({LAYERS[_layer(b)][0]})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert upward == []


def test_every_module_has_a_layer():
    for mod in _modules():
        assert 0 <= _layer(mod) < len(LAYERS)


def test_no_module_past_600_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_checks_can_fail():
    """The cycle finder and the layer rule see a planted cycle and an upward import."""
    deps = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycles(deps) == [["a", "b", "c"]]
    assert _layer("api") > _layer("store.transcript") > _layer("errors")
    assert _layer("store.publish") > _layer("search.index")
