"""House rules about structure, enforced here rather than by memory (see README's Layout):

Arrows point down only: app.py and app_pages/ → ui/ → service/ → viz/, cli/ → service/, studies/ → jobs/ →
explainers/, models/ → storage/; ui/ and cli/ → signin/. explainers/ types against a Classifier protocol and
imports neither models/ nor studies/; storage/ and signin/ import nothing of ours. ALLOWED below is the rule
itself. Inside a package too, no module imports another that imports it back, not even from inside a function
(an import there may save start-up time, never hide a circle).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "app",
    "app_pages",
    "ui",
    "cli",
    "service",
    "viz",
    "studies",
    "jobs",
    "explainers",
    "models",
    "storage",
    "signin",
    "bench",
    "tests",
}
# The packages each one may import from (besides itself and third-party packages).
ALLOWED = {
    "storage": set(),
    "signin": set(),  # passwords and the sign-in limiter: nothing of ours below them
    "models": {"storage"},
    "explainers": {"storage"},
    "jobs": {"explainers", "models", "storage"},
    "studies": {"jobs", "explainers", "models", "storage"},
    "viz": {"studies", "explainers", "storage"},
    # Compare's requests, grid, ranking, downloads and report, for the pages, ui and the command line alike.
    "service": {"viz", "studies", "jobs", "explainers", "models", "storage"},
    "cli": {"service", "studies", "jobs", "viz", "explainers", "models", "storage", "signin"},
    "ui": {"service", "viz", "studies", "jobs", "explainers", "models", "storage", "signin"},
    "app_pages": {"ui", "service", "viz", "studies", "jobs", "explainers", "models", "storage", "signin"},
}
NO_STREAMLIT = ("storage", "signin", "models", "explainers", "jobs", "studies", "viz", "service", "cli")
# `python -m explainers` keeps working: a two-line shim that hands over to cli (nothing imports it).
SHIMS = {ROOT / "explainers" / "__main__.py"}
MAX_LINES = 400


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        if path in SHIMS:
            continue
        ours = imported_roots(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {ours - ALLOWED[package]}"
        if package in NO_STREAMLIT:
            assert "streamlit" not in imported_roots(path), f"{path.relative_to(ROOT)} imports streamlit"


def test_the_command_line_shim_is_the_only_exception() -> None:
    assert imported_roots(ROOT / "explainers" / "__main__.py") & OURS == {"cli"}
    for path in ROOT.rglob("*.py"):
        if not any(part.startswith(".venv") for part in path.parts) and path not in SHIMS:
            tree = ast.parse(path.read_text(), filename=str(path))
            modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert "explainers.__main__" not in modules, path


def test_no_source_file_is_over_the_size_limit() -> None:
    sizes = {
        path.relative_to(ROOT): len(path.read_text().splitlines())
        for package in [*ALLOWED, "."]
        for path in ((ROOT / package).rglob("*.py") if package != "." else ROOT.glob("*.py"))
    }
    assert max(sizes.values()) <= MAX_LINES, {str(p): n for p, n in sizes.items() if n > MAX_LINES}


def test_importing_the_computation_layers_loads_no_streamlit() -> None:
    code = (
        "import sys, explainers.request, explainers.methods, cli.main, viz.plots, studies, models, storage; "
        "sys.exit(1 if any(m.split('.')[0] == 'streamlit' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_explainers_never_loads_models_or_studies() -> None:
    code = (
        "import sys, explainers.request, explainers.cache, explainers.faithfulness, explainers.backgrounds; "
        "sys.exit(1 if any(m.split('.')[0] in ('models', 'studies', 'ui', 'cli', 'viz') for m in sys.modules) "
        "else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def module_graph() -> dict[str, set[str]]:
    """Our modules and those each one imports, at the top or inside a function (what only a type checker reads,
    under ``if TYPE_CHECKING:``, is left out: it never runs)."""
    modules = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for child in block.body
            for node in ast.walk(child)
        }
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
        # Importing a.b.c runs a/__init__ and a/b/__init__ first: a package's __init__ is imported too (a module
        # may import its own packages, whose __init__ is already running: not a circle of modules).
        found = {module for target in targets if (module := ours(target))}
        if path.name == "__init__.py" and "importlib.import_module" in path.read_text():  # loads its modules itself
            found |= {module for module in modules if module.startswith(name + ".")}
        found |= {parent for module in found for parent in packages_above(module) if parent in modules}
        graph[name] = {module for module in found if module != name and not name.startswith(module + ".")}
    return graph


def packages_above(module: str) -> list[str]:
    """a.b.c → [a, a.b]: the packages whose __init__ runs before the module."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other (Tarjan's strongly connected components of two or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = module_graph()
    assert len(graph) > 100  # every module of every layer was read
    assert circles(graph) == []
