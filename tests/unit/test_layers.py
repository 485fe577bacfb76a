"""Imports run one way: core -> handlers -> store -> client -> worker -> interfaces.

The folders are the layers. A module may import from its own layer or a lower one, never a
higher one; this reads every module's imports (including those inside functions) and holds that.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "durableq"

LAYERS = {
    "core": ["durableq.core"],
    "handlers": ["durableq.handlers"],
    "store": ["durableq.store", "durableq._migrations"],
    "client": [
        "durableq.client",
        "durableq.reader",
        "durableq.async_client",
        "durableq.bulk",
        "durableq.group_commit",
        "durableq.snapshots",
        "durableq.views",
    ],
    "worker": ["durableq.worker"],
    "interfaces": [
        "durableq.cli",
        "durableq.http",
        "durableq.dashboard",
        "durableq.benchmark",
        "durableq.__main__",
        "durableq",
    ],
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


def _every_import(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    plain = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    return plain | {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }


def test_the_core_does_no_io() -> None:
    forbidden = {"sqlalchemy", "sqlite3", "psycopg", "alembic", "click", "subprocess", "socket"}
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        names = {name.split(".")[0] for name in _every_import(path)}
        assert not names & forbidden, f"{_module_name(path)} imports {names & forbidden}"


def test_the_sqlite_package_imports_nothing_heavy() -> None:
    # The CLI's enqueue imports durableq.store.sqlite to stay clear of SQLAlchemy's import cost.
    for name in ("__init__.py", "statements.py", "queues.py", "enqueue.py"):
        imported = _every_import(PACKAGE / "store" / "sqlite" / name)
        heavy = {m for m in imported if m.split(".")[0] in {"sqlalchemy", "alembic"}}
        assert not heavy, f"store/sqlite/{name} imports {heavy}"


def test_no_module_is_over_400_lines() -> None:
    long = {
        _module_name(path): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_every_package_ships_in_the_wheel() -> None:
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {_module_name(init) for init in PACKAGE.rglob("__init__.py")}
    assert found - listed == set()
