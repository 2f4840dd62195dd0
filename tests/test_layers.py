"""The layers point one way: the PyTorch core knows nothing of the UI, the shared UI knows nothing of the pages, and
the benches borrow nothing from the tests. Read from the source (every import statement, also those inside
functions), so a late `import streamlit` in a helper counts as much as one at the top of a module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> the top-level names its modules must never import, and why
FORBIDDEN = {
    "vae_core": ({"streamlit", "ui", "app_pages", "app", "tests", "bench"}, "the core runs without any UI"),
    "ui": ({"app_pages", "app", "tests", "bench"}, "what pages share cannot depend on a page"),
    "bench": ({"tests"}, "the benches share bench/harness.py, never the tests"),
}


def imported_names(path: Path) -> set[str]:
    """The top-level package of every absolute import in the file (relative imports stay inside their package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down_the_layers(package):
    forbidden, why = FORBIDDEN[package]
    files = modules(package)
    assert files, f"no modules found under {package}/"
    wrong = {str(p.relative_to(ROOT)): sorted(imported_names(p) & forbidden) for p in files}
    wrong = {path: names for path, names in wrong.items() if names}
    assert not wrong, f"{package}/ must not import {sorted(forbidden)} ({why}): {wrong}"


def test_the_reader_sees_imports_inside_functions(tmp_path):
    """The check itself: a nested import and a `from x.y import z` are both seen; a relative import is not."""
    source = tmp_path / "m.py"
    source.write_text("from . import sibling\n\ndef f():\n    import streamlit as st\n    from ui.state import x\n")
    assert imported_names(source) == {"streamlit", "ui"}
