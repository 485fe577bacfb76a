"""`durableq bench`: run the reproducible benchmark and print a table, or JSON with --json."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from durableq.benchmark import SECTIONS, BenchOptions, run_benchmark
from durableq.cli.output import echo_json
from durableq.core.errors import DurableqError


class Terminated(DurableqError):
    exit_code = 128 + signal.SIGTERM


@click.command()
@click.option(
    "--jobs",
    type=click.IntRange(1, 10_000_000),
    metavar="N",
    help="No-op jobs per processing, baseline and depth run [default 10,000; --quick 500].",
)
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"], case_sensitive=False),
    default="FULL",
    show_default=True,
    help="Durability of every database in the run (FULL is the product default).",
)
@click.option("--quick", is_flag=True, help="Small sizes, for CI: well under a minute.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(SECTIONS),
    help="Run only this section (repeatable); processing also runs the baseline.",
)
@click.option(
    "--db",
    "server",
    metavar="URL",
    help="A postgresql:// server: run the enqueue, baseline, processing, end-to-end and idle "
    "sections there, each on a database of its own (created, then dropped), against bare "
    "psycopg.",
)
def bench(
    jobs: int | None,
    synchronous: str,
    quick: bool,
    as_json: bool,
    only: tuple[str, ...],
    server: str | None,
) -> None:
    """Measure durableq on fresh SQLite databases in a temporary directory (or, with --db, on a
    PostgreSQL server).

    Enqueue rates (compared with bare sqlite3 inserts), the CLI's commands as whole processes,
    processing rates (daemons as subprocesses, compared with bare sqlite3 at the same
    durability), end-to-end and idle pickup latency, many producers at once, idle CPU, the
    effect of a long history, and daemon memory. Progress goes to stderr. The --db given
    before the command name (or DURABLEQ_DATABASE) is ignored: only this --db picks a server.
    """
    started = time.monotonic()

    def progress(message: str) -> None:
        click.echo(f"bench [{time.monotonic() - started:5.1f}s] {message}", err=True)

    options = BenchOptions(
        jobs=jobs, synchronous=synchronous.upper(), quick=quick, only=only, server=server
    )
    with terminate_cleanly():
        report = run_benchmark(options, progress)
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(report.table())


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C does, so the daemons are stopped and the files removed."""

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise Terminated("terminated: stopped the benchmark's daemons and removed its files")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
