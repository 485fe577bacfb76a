"""The CLI in-process through click's CliRunner (fast), on copies of one seeded database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from durableq.cli import cli
from tests.support.seeded import build_seeded, copy_database

Invoke = Callable[..., Result]


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Jobs 1-5: completed, failed, canceled, pending, running (see tests.support.seeded)."""
    return build_seeded(tmp_path_factory.mktemp("cli-template") / "seeded.db")


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path) -> Path:
    return copy_database(seeded_template, tmp_path / "seeded.db")


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """`invoke(args, db=..., input=..., env=..., color=...)`: runs `durableq` in-process and, unless
    `fails=True`, asserts that it succeeded (showing what it printed if not)."""
    monkeypatch.delenv("DURABLEQ_DATABASE", raising=False)
    runner = CliRunner()

    def run(
        args: Sequence[str],
        db: Path | str | None = None,
        *,
        fails: bool = False,
        **options: object,
    ) -> Result:
        full = [*(["--db", str(db)] if db is not None else []), *args]
        result = runner.invoke(cli, full, **options)  # type: ignore[arg-type]
        if not fails:
            assert result.exit_code == 0, (
                f"durableq {' '.join(full)} exited {result.exit_code}: {result.output}"
                f"{result.exception!r}"
            )
        return result

    return run
