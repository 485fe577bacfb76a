"""Imports run one way: domain -> persistence -> services -> runtime -> interfaces.

A module may import from its own layer or a lower one, never a higher one; this reads every
module's imports (including those inside functions) and holds that.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "durableq"

LAYERS = {
    "domain": [
        "durableq.errors",
        "durableq.jobs",
        "durableq.retry",
        "durableq.durations",
        "durableq.payloads",
        "durableq.outcomes",
        "durableq.config",
        "durableq.handlers",
        "durableq.builtins",
        "durableq.builder",
        "durableq.queues",
    ],
    "persistence": ["durableq.db", "durableq._migrations"],
    "services": [
        "durableq.client",
        "durableq.executor",
        "durableq.leases",
        "durableq.job_log",
        "durableq.doorbell",
        "durableq.logs",
        "durableq.views",
        "durableq.events",
    ],
    "runtime": [
        "durableq.services",
        "durableq.leader",
        "durableq.dispatcher",
        "durableq.maintenance",
        "durableq.daemon",
    ],
    "interfaces": ["durableq.cli", "durableq.benchmark", "durableq.__main__", "durableq"],
}
RANK = {prefix: rank for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes}


def _layer(module: str) -> int:
    matches = [p for p in RANK if module == p or module.startswith(p + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return RANK[max(matches, key=len)]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "durableq":  # from durableq import payloads: the submodule
                found.update(f"durableq.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "durableq" or name.startswith("durableq.")}


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for imported in _imports(path):
            if _layer(imported) > _layer(module):
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_domain_does_no_io() -> None:
    forbidden = {"sqlalchemy", "sqlite3", "psycopg", "alembic", "click", "subprocess", "socket"}
    for module in LAYERS["domain"]:
        if module == "durableq.builtins":  # the opt-in shell handler runs a program, by design
            continue
        path = PACKAGE.parent / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not names & forbidden, f"{module} imports {names & forbidden}"
