"""Which sections run, at what sizes, in one temporary directory that is always removed."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import durableq
from durableq.benchmark import (
    cli,
    dashboard,
    http_api,
    latency,
    postgres,
    producers,
    store,
    throughput,
)
from durableq.benchmark.harness import Bench, Progress
from durableq.benchmark.report import Report
from durableq.core.errors import InvalidInput

SECTIONS = (
    "enqueue",
    "cli",
    "repository",
    "baseline",
    "processing",
    "end-to-end",
    "producers",
    "idle",
    "depth",
    "memory",
    "http",
    "dashboard",
)
# What runs on a PostgreSQL server (`bench --db postgresql://...`); the rest is SQLite's own.
POSTGRES_SECTIONS = ("enqueue", "baseline", "processing", "end-to-end", "idle")

FULL = (
    throughput.Sizes(
        jobs=10_000,
        enqueue_single=5_000,
        enqueue_batched=100_000,
        enqueue_seconds=10.0,
        cli_calls=5,
        history_rows=1_000_000,
        repeats=3,
    ),
    latency.Sizes(
        e2e_jobs=5_000,
        e2e_seconds=10.0,
        idle_jobs=200,
        idle_interval=0.05,
        cpu_window=10.0,
        memory_jobs=100_000,
        settle=1.0,
    ),
    http_api.Sizes(seconds=5.0, batch_seconds=5.0),
    producers.Sizes(per_producer=150, solo=2_400),
)
QUICK = (
    throughput.Sizes(
        jobs=500,
        enqueue_single=500,
        enqueue_batched=10_000,
        enqueue_seconds=1.5,
        cli_calls=3,
        history_rows=100_000,
        repeats=1,
    ),
    latency.Sizes(
        e2e_jobs=500,
        e2e_seconds=2.0,
        idle_jobs=30,
        idle_interval=0.05,
        cpu_window=2.0,
        memory_jobs=2_000,
        settle=0.3,
    ),
    http_api.Sizes(seconds=1.0, batch_seconds=1.0),
    producers.Sizes(per_producer=20, solo=320),
)


@dataclass(frozen=True)
class BenchOptions:
    jobs: int | None = None  # processing, baseline and depth; default by mode
    synchronous: str = "FULL"
    quick: bool = False
    only: tuple[str, ...] = ()  # empty: every section
    server: str | None = None  # a postgresql:// URL: run POSTGRES_SECTIONS there

    def selected(self) -> list[str]:
        unknown = set(self.only) - set(SECTIONS)
        if unknown:
            raise InvalidInput(f"unknown section {sorted(unknown)[0]!r}: use {', '.join(SECTIONS)}")
        available = SECTIONS if self.server is None else POSTGRES_SECTIONS
        elsewhere = set(self.only) - set(available)
        if elsewhere:
            raise InvalidInput(
                f"section {sorted(elsewhere)[0]!r} runs on SQLite only; on PostgreSQL use "
                f"{', '.join(POSTGRES_SECTIONS)}"
            )
        wanted = set(self.only or available)
        if "processing" in wanted:
            wanted.add("baseline")  # processing is reported as a ratio of it
        return [section for section in SECTIONS if section in wanted]


def run_benchmark(options: BenchOptions, progress: Progress) -> Report:
    sections = options.selected()
    if options.server is not None:
        postgres.check_server(options.server)
    sizes, live, web, many = QUICK if options.quick else FULL
    if options.jobs is not None:
        if options.jobs < 1:
            raise InvalidInput("--jobs must be at least 1")
        sizes = throughput.Sizes(**{**sizes.__dict__, "jobs": options.jobs})
    started = time.monotonic()
    meta = _meta(options, sizes.jobs, sections)
    report = Report(meta)
    with tempfile.TemporaryDirectory(prefix="durableq-bench-") as scratch:
        bench = Bench(Path(scratch), options.synchronous, progress, server=options.server)
        baseline_rate: list[float] = []
        steps: dict[str, Callable[[], Any]] = {
            "enqueue": lambda: throughput.enqueue(bench, sizes, report),
            "cli": lambda: cli.cli(bench, sizes.cli_calls, report),
            "repository": lambda: store.repository(bench, sizes, report),
            "baseline": lambda: baseline_rate.append(throughput.baseline(bench, sizes, report)),
            "processing": lambda: throughput.processing(
                bench, sizes, report, baseline_rate[0] if baseline_rate else None
            ),
            "end-to-end": lambda: latency.end_to_end(bench, live, report),
            "producers": lambda: producers.producers(bench, many, report),
            "idle": lambda: latency.idle(bench, live, report),
            "depth": lambda: throughput.depth(bench, sizes, report),
            "memory": lambda: latency.memory(bench, live, report),
            "http": lambda: http_api.http(bench, web, report),
            "dashboard": lambda: dashboard.dashboard(bench, sizes, report),
        }
        try:
            for section in sections:
                steps[section]()
        finally:
            bench.close()
    meta["duration_s"] = time.monotonic() - started
    meta["load_average_end"] = _load()
    return report


def _meta(options: BenchOptions, jobs: int, sections: list[str]) -> dict[str, Any]:
    return {
        "durableq": durableq.__version__,
        "mode": "quick" if options.quick else "full",
        "database": "sqlite" if options.server is None else "postgresql",
        # On a server, its own synchronous_commit decides durability, for the yardsticks too.
        "synchronous": options.synchronous if options.server is None else "server's",
        "jobs": jobs,
        "sections_run": sections,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Context for the figures: on a busy machine every rate is lower.
        "load_average_start": _load(),
        "duration_s": 0.0,
    }


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
