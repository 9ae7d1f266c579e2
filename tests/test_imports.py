"""Imports inside rs_change run one way: no cycle among its modules, counting the imports inside
functions too (they run when the function is first called, so a cycle through them is still a
lower stage calling back into a higher one). docs/architecture.md lists the resulting layers.

Run as a script (``python tests/test_imports.py``) to print the graph and its layers.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = "rs_change"
PKG_DIR = Path(__file__).resolve().parents[1] / PACKAGE


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``rs_change`` is its ``__init__.py``)."""
    out = {}
    for path in sorted(PKG_DIR.glob("*.py")):
        name = PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"
        out[name] = path
    return out


def _is_extension(name: str) -> bool:
    """A compiled module of the package (``_kernels``: its C source, or a built library)."""
    return (PKG_DIR / f"{name}.c").exists() or any(PKG_DIR.glob(f"{name}.*.so")) or any(PKG_DIR.glob(f"{name}*.pyd"))


def _resolve(module: str, level: int, importer: str, is_package: bool) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    if level == 0:
        return module
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its code (module level, functions, classes).

    ``from . import x`` counts as importing module ``rs_change.x`` when x is a module, otherwise
    (an attribute such as ``__version__``) as importing the package ``rs_change`` itself.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.stem == "__init__"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:  # import rs_change.x.y -> the closest module
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, name, is_package)
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif base == PACKAGE and _is_extension(alias.name):
                    continue  # a compiled module of the package (_kernels): imports nothing back
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (the graph the test checks)."""
    mods = package_modules()
    return {name: imported_modules(name, path, set(mods)) for name, path in mods.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each is a cycle group)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """Depth of each module: 0 imports no package module, otherwise 1 + the deepest it imports."""
    depth: dict[str, int] = {}

    def d(v: str) -> int:
        if v not in depth:
            depth[v] = 1 + max((d(w) for w in graph[v]), default=-1)
        return depth[v]

    for v in graph:
        d(v)
    return depth


def _short(name: str) -> str:
    return "__init__" if name == PACKAGE else name.removeprefix(PACKAGE + ".")


def describe_cycles(graph: dict[str, set[str]], groups: list[list[str]]) -> str:
    lines = []
    for group in groups:
        members = set(group)
        lines.append("cycle group: " + ", ".join(_short(m) for m in group))
        for m in group:
            inside = sorted(_short(w) for w in graph[m] & members)
            lines.append(f"    {_short(m)} imports {', '.join(inside)}")
    return "\n".join(lines)


def test_graph_sees_every_module_and_known_edges():
    graph = import_graph()
    assert "rs_change.cli" in graph and "rs_change.water" in graph and PACKAGE in graph
    # a function-level import (cli imports pipeline inside its command functions)
    assert "rs_change.pipeline" in graph["rs_change.cli"]
    # module level, relative and absolute forms
    assert "rs_change.errors" in graph["rs_change.config"]
    assert "rs_change.errors" in graph["rs_change.clustering"]


def test_resolve_relative_imports():
    assert _resolve("errors", 1, "rs_change.cli", False) == "rs_change.errors"
    assert _resolve("", 1, "rs_change.cli", False) == "rs_change"
    assert _resolve("api", 1, "rs_change", True) == "rs_change.api"
    assert _resolve("x", 2, "rs_change.sub.mod", False) == "rs_change.x"


def test_tarjan_finds_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert strongly_connected(g) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = import_graph()
    groups = strongly_connected(graph)
    assert not groups, (
        "rs_change modules import each other in a cycle (imports inside functions count); move the shared "
        "code down to a module both can import:\n" + describe_cycles(graph, groups)
    )


def test_cli_does_not_import_numpy():
    """``rs-change --help`` starts without numpy, rasterio or pydantic: the package __init__ is lazy."""
    code = (
        "import sys, rs_change.cli; "
        "print(','.join(m for m in ('numpy', 'rasterio', 'pyproj', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing rs_change.cli loads {out.stdout.strip()}"


def test_lazy_package_names_resolve():
    import rs_change

    for name in rs_change.__all__:
        assert getattr(rs_change, name) is not None, name
    assert set(rs_change.__all__) <= set(dir(rs_change))
    assert rs_change.model.WaterModel is rs_change.WaterModel  # submodules by attribute, as before


def test_lazy_names_are_the_type_checking_imports():
    """__init__'s lazy table, its ``if TYPE_CHECKING:`` imports (what type checkers and this
    test's graph see) and ``__all__`` name the same things."""
    import rs_change

    tree = ast.parse((PKG_DIR / "__init__.py").read_text(encoding="utf-8"))
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                declared.update({a.name: imp.module for a in imp.names})
    declared.pop("RunResult")  # an annotation only
    assert declared == rs_change._LAZY
    assert set(rs_change.__all__) == set(rs_change._LAZY) | {"__version__", "run"}


# --- docs/architecture.md's generated sections (docs/build_docs.py fills them; a test keeps them current)

ARCH_DOC = PKG_DIR.parent / "docs" / "architecture.md"

# calls that read or write files, or write to the terminal: the name called (``open``), or the
# attribute called on anything (``x.write_text``), or on a module (``os.replace``); the package's
# own openers count as well (a module that calls ``readers.open_raster`` reads a file)
_OPENERS = {"open_raster", "open_geotiff", "open_scene", "read_scene", "decimated_read", "decimated_read_raw",
            "write_cog", "write_vectors", "staging_dir"}
_EDGE_NAMES = {"open", "print", "input"} | _OPENERS
_EDGE_ATTRS = {
    "open", "write_text", "write_bytes", "read_text", "read_bytes", "to_file", "read_file", "write_dataframe",
    "read_dataframe", "savefig", "mkdir", "unlink", "rmdir", "rmtree", "iterdir", "copyfile", "fsync",
    "write_cog", "cog_translate",
} | _OPENERS
_EDGE_MODULE_ATTRS = {
    "os": {"replace", "rename", "remove", "makedirs", "listdir", "scandir", "open", "fsync", "unlink"},
    "sys": {"stdout", "stderr", "stdin"},
    "shutil": {"copy", "copy2", "copyfile", "move", "rmtree"},
}


def touches_files(path: Path) -> list[str]:
    """The calls of a module's code that read or write files or the terminal (empty: a pure module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EDGE_NAMES:
            found.add(node.func.id)
        elif isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base in _EDGE_MODULE_ATTRS and node.attr in _EDGE_MODULE_ATTRS[base]:
                found.add(f"{base}.{node.attr}")
            elif node.attr in _EDGE_ATTRS:
                found.add(f".{node.attr}")
    return sorted(found)


def module_role(path: Path) -> str:
    """A module's role: its docstring's first sentence, up to a colon after three words or more."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    summary = " ".join(doc.split("\n\n")[0].split()).removeprefix("EDGE: ")
    summary = re.split(r"\.\s+(?=[A-Z])", summary)[0].rstrip(".")
    head, colon, _ = summary.partition(": ")
    if colon and len(head.split()) >= 3:
        summary = head
    if not re.match(r"\w+-", summary):  # rs-change, k-means keep their case
        summary = summary[:1].upper() + summary[1:]
    return summary.replace("``", "`").replace("|", "\\|")


def layers_section(graph: dict[str, set[str]] | None = None) -> str:
    """The table of import layers: every module, its layer, whether it touches files, its role."""
    graph = graph if graph is not None else import_graph()
    depth = layers(graph)
    paths = package_modules()
    lines = ["| layer | module | edge | role |", "|---|---|---|---|"]
    for lvl in sorted(set(depth.values()), reverse=True):
        for m in sorted((m for m, v in depth.items() if v == lvl), key=_short):
            edge = "EDGE" if touches_files(paths[m]) else ""
            lines.append(f"| {lvl} | `{_short(m)}` | {edge} | {module_role(paths[m]) or '`python -m rs_change`'} |")
    return "\n".join(lines)


def imports_section(graph: dict[str, set[str]] | None = None) -> str:
    """What each module imports (inside functions included), from the highest layer down."""
    graph = graph if graph is not None else import_graph()
    depth = layers(graph)
    lines = []
    for m in sorted(graph, key=lambda m: (-depth[m], _short(m))):
        targets = ", ".join(f"`{_short(w)}`" for w in sorted(graph[m], key=_short)) or "none"
        lines.append(f"- `{_short(m)}`: {targets}")
    return "\n".join(lines)


def generated_sections() -> dict[str, str]:
    """Marker name -> body of every generated section of docs/architecture.md."""
    graph = import_graph()
    return {"IMPORT_LAYERS": layers_section(graph), "IMPORT_LISTS": imports_section(graph)}


def _section(text: str, name: str) -> str | None:
    start = re.search(rf"<!-- BEGIN {name}\b[^\n]*-->\n", text)
    end = text.find(f"<!-- END {name} -->")
    return None if start is None or end < 0 else text[start.end():end].strip()


def test_architecture_doc_is_generated_from_the_code():
    """docs/architecture.md's layer table and import lists are what the code imports today."""
    text = ARCH_DOC.read_text(encoding="utf-8")
    for name, body in generated_sections().items():
        assert _section(text, name) is not None, f"docs/architecture.md has no {name} markers"
        assert _section(text, name) == body.strip(), (
            f"docs/architecture.md's {name} section is out of date: run `python docs/build_docs.py --architecture`"
        )


def test_module_table_marks_every_module_that_touches_files():
    """The hand-written module table says EDGE for exactly the modules whose code reads or writes files."""
    text = ARCH_DOC.read_text(encoding="utf-8")
    marked = set(re.findall(r"^\| `(\w+)\.py`[^|]*\| EDGE\b", text, re.M))
    edge = {path.stem for path in package_modules().values() if touches_files(path)}
    assert marked == edge, (
        f"docs/architecture.md's module table: mark EDGE {sorted(edge - marked)}, unmark {sorted(marked - edge)}"
    )


def test_touches_files_sees_reads_writes_and_the_terminal(tmp_path):
    pure = tmp_path / "pure.py"
    pure.write_text("import numpy as np\n\ndef f(a):\n    return a.replace(1, 2)\n")
    edge = tmp_path / "edge.py"
    edge.write_text("import os, sys, rasterio\n\ndef f(p, q):\n    with rasterio.open(p) as ds:\n"
                    "        sys.stderr.write('x')\n    os.replace(p, q)\n")
    assert touches_files(pure) == []
    assert touches_files(edge) == [".open", "os.replace", "sys.stderr"]


if __name__ == "__main__":
    g = import_graph()
    groups = strongly_connected(g)
    if groups:
        print(describe_cycles(g, groups))
    else:
        depth = layers(g)
        for lvl in sorted(set(depth.values()), reverse=True):
            print(lvl, ", ".join(sorted(_short(m) for m, v in depth.items() if v == lvl)))
    for m in sorted(g):
        print(f"{_short(m)} -> {', '.join(sorted(_short(w) for w in g[m]))}")
