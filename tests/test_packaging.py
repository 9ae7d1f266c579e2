"""pyproject.toml declares what the code imports: no more, no less.

The package's third-party imports (read with ``ast`` from every ``rs_change/*.py``, imports
inside functions included) must equal the core dependencies plus the optional extras; the
imports of ``tests/`` must be covered by the core dependencies plus the ``test`` extra.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import pytest

    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

#: import name -> distribution name, where they differ (everything else: the same name)
DISTRIBUTION = {
    "yaml": "PyYAML",
    "sklearn": "scikit-learn",
    "rio_cogeo": "rio-cogeo",
    "pystac_client": "pystac-client",
    "planetary_computer": "planetary-computer",
}
#: imported only on request, inside a function, with a one-line error when missing: an extra each
OPTIONAL = {"distributed", "xarray", "rioxarray", "pyhdf", "planetary_computer"}
#: extras for working on rs-change itself, not features of the package
DEV_EXTRAS = {"test", "lint"}
#: first-party top-level names (the package, and the benchmarks some tests call)
FIRST_PARTY = {"rs_change", "tests", "benchmarks"}


def _norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    assert m, f"cannot read a distribution name from {req!r}"
    return _norm(m.group(1))


def _third_party_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level third-party module names imported anywhere in folder/*.py -> the files."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, set()).add(path.name)
    return found


def _distributions(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    return {_norm(DISTRIBUTION.get(mod, mod)): files for mod, files in imports.items()}


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_requirement_name(r) for r in project.get("dependencies", [])}
    extras = {k: {_requirement_name(r) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    return core, extras


def test_declared_dependencies_equal_imported_ones() -> None:
    imported = _distributions(_third_party_imports(ROOT / "rs_change"))
    core, extras = _declared()
    optional = {_norm(n) for n in OPTIONAL}
    feature_extras = set().union(*(v for k, v in extras.items() if k not in DEV_EXTRAS))

    missing = sorted(set(imported) - core - feature_extras)
    unused = sorted((core | feature_extras) - set(imported))
    problems = []
    if missing:
        problems.append("imported by rs_change but not declared: " + ", ".join(
            f"{d} ({', '.join(sorted(imported[d]))})" for d in missing))
    if unused:
        problems.append("declared but never imported by rs_change: " + ", ".join(unused))
    assert not problems, "pyproject.toml: " + "; ".join(problems)
    in_core = sorted(core & optional)
    assert not in_core, f"optional imports declared as core dependencies (make them extras): {in_core}"
    not_in_core = sorted(set(imported) - optional - core)
    assert not not_in_core, f"imported unconditionally but only declared in an extra: {not_in_core}"


def test_test_extra_covers_what_the_tests_import() -> None:
    core, extras = _declared()
    imported = _distributions(_third_party_imports(ROOT / "tests"))
    missing = sorted(set(imported) - core - extras.get("test", set()))
    assert not missing, "imported by tests/ but in neither the dependencies nor the test extra: " + ", ".join(
        f"{d} ({', '.join(sorted(imported[d]))})" for d in missing
    )
