"""The layering of docs/architecture.md holds in the code: every module listed, every import
pointing up the table, function-local imports only where laziness is needed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgecnn"
PAGE = ROOT / "docs" / "architecture.md"
# Where an `edgecnn` import may wait inside a function, and why (docs/architecture.md).
LAZY_ALLOWED = {
    "cli": "each command imports the library it runs, so that `edgecnn --help` stays light",
    "runners.remote": "`info` runs on a device where numpy and onnxruntime may be missing",
}


def _table() -> list[tuple[str, list[str]]]:
    """(entry, modules) per row of the page's table, top (lowest) first."""
    rows = []
    for line in PAGE.read_text().splitlines():
        match = re.fullmatch(r"\| `([\w.]+/?)` \|([^|]*)\|[^|]+\|", line)
        if match:
            rows.append((match[1], re.findall(r"`(\w+)`", match[2])))
    return rows


def _entry(module: str) -> str:
    """The table entry a dotted module belongs to: ``edgecnn.runners.ssh`` -> ``runners/``."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1] + "/"
    if len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").is_file():
        return parts[1] + ".py"
    return "__init__"  # the package itself, or a name it defines (``__version__``)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported edgecnn module or name, line, inside a function) for every import of edgecnn."""
    tree = ast.parse(path.read_text())
    local = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            names = [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        found += [(n, node.lineno, id(node) in local) for n in names if n.split(".")[0] == "edgecnn"]
    return found


def test_the_page_lists_every_module_and_nothing_else():
    listed = {}
    for entry, modules in _table():
        listed[entry] = set(modules)
    actual: dict[str, set[str]] = {}
    for module in _modules():
        parts = module.split(".")
        actual.setdefault(_entry(module), set())
        if len(parts) > 2:
            actual[_entry(module)].add(parts[2])
    assert listed == actual


def test_no_import_runs_back_up_the_table():
    order = [entry for entry, _ in _table()]
    assert len(order) == len(set(order))
    upward = []
    for module, path in _modules().items():
        here = order.index(_entry(module))
        for name, line, _ in _imports(module, path):
            if order.index(_entry(name)) > here:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not upward, "\n".join(upward)


def test_function_local_imports_only_where_laziness_is_needed():
    found = [f"{path.relative_to(ROOT)}:{line} imports {name} inside a function"
             for module, path in _modules().items()
             if not any(module == f"edgecnn.{k}" or module.startswith(f"edgecnn.{k}.") for k in LAZY_ALLOWED)
             for name, line, local in _imports(module, path) if local]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("from edgecnn.results.page import write_page", "edgecnn.results.page.write_page"),
    ("from .schema import to_json", "edgecnn.results.schema.to_json"),
    ("import edgecnn.runtime.isa", "edgecnn.runtime.isa"),
])
def test_the_import_reader_resolves_every_form(tmp_path, source, expected):
    """The checks above see absolute, relative and plain imports, at the top or in a function."""
    path = tmp_path / "matrix.py"
    path.write_text(f"{source}\n\ndef f():\n    {source}\n")
    found = _imports("edgecnn.results.matrix", path)
    assert found == [(expected, 1, False), (expected, 4, True)]
    assert _entry(expected) in {"results/", "runtime/"}
