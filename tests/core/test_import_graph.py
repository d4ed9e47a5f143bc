"""No import circle among ftlens' modules, counting every import: at the top, inside
functions and under TYPE_CHECKING. Read from the source with ast, so a circle that only a
lazy import closes is found too."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[2] / "src" / "ftlens"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The ftlens modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names}
    return {m for m in out if m in modules and m != name}


def graph() -> nx.DiGraph:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(files)
    for name, path in files.items():
        g.add_edges_from((name, other) for other in imported(path, set(files)))
    return g


def test_no_module_imports_itself_through_others() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph()) if len(c) > 1]
    assert cycles == []


def test_the_reader_sees_lazy_and_type_checking_imports() -> None:
    g = graph()
    assert g.has_edge("ftlens.cli.curves", "ftlens.cli.follow")  # inside a function
    assert g.has_edge("ftlens.core.tradeoff", "ftlens.core.eval_types")  # TYPE_CHECKING
    assert g.has_edge("ftlens.core.evaluation", "ftlens.core.eval_rules")  # from pkg import mod


def test_core_imports_nothing_above_it() -> None:
    g = graph()
    for module in (n for n in g if n.startswith("ftlens.core.")):
        above = [m for m in g.successors(module)
                 if not m.startswith("ftlens.core") and m != "ftlens.errors"]
        assert above == [], module


LOWER = ("ftlens.report", "ftlens.server", "ftlens.client", "ftlens.train", "ftlens.io",
         "ftlens.core")


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_layers_import_only_downwards() -> None:
    """cli → steps (the application layer) → the layers below; nothing below imports the
    steps or the CLI, and the steps never import the CLI."""
    g = graph()
    for module in g:
        if within(module, LOWER):
            forbidden: tuple[str, ...] = ("ftlens.steps", "ftlens.cli")
        elif within(module, ("ftlens.steps",)):
            forbidden = ("ftlens.cli",)
        else:
            continue
        assert [m for m in g.successors(module) if within(m, forbidden)] == [], module
