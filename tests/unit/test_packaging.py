"""The wheel lists its packages by hand (to ship migrations/ inside durableq): keep it complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_under_durableq_is_in_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "durableq").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add to pyproject's packages: {sorted(found - listed)}"
    assert config["package-dir"]["durableq._migrations"] == "migrations"
    assert {"durableq._migrations", "durableq._migrations.versions"} <= listed
