"""House rule: explainers/ and models/ are pure computation and never import streamlit; models/ never
imports explainers/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package, forbidden", [
    ("explainers", {"streamlit", "ui", "pages"}),
    ("models", {"streamlit", "ui", "pages", "explainers"}),
])
def test_computation_layers_keep_out_of_the_ui(package: str, forbidden: set[str]) -> None:
    for path in (ROOT / package).rglob("*.py"):
        assert not imported_roots(path) & forbidden, f"{path.relative_to(ROOT)} imports {imported_roots(path) & forbidden}"


def test_importing_the_computation_layers_loads_no_streamlit() -> None:
    code = ("import sys, explainers.api, explainers.cli, explainers.plots, models; "
            "sys.exit(1 if any(m.split('.')[0] == 'streamlit' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
