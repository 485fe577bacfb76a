"""How fast jobs go in (enqueue) and through (processing, depth), and the bare-sqlite3 baseline."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

from durableq.benchmark import postgres, timings
from durableq.benchmark.baseline import claim_and_complete_all, insert_one_each
from durableq.benchmark.harness import Bench, BenchError, Db, enqueue_noops, finish_timeout
from durableq.benchmark.report import Report, Target, ms, number, rate
from durableq.benchmark.timings import Run

ENQUEUE_BATCH = 1_000
# (daemons, --concurrency of each, --pool); "two daemons" at the product's default, then the
# process pool (handlers in reused child processes) at the same.
PROCESSING = (
    (1, 1, "thread"),
    (1, 4, "thread"),
    (1, 16, "thread"),
    (2, 4, "thread"),
    (1, 4, "process"),
)
DEPTH_CONCURRENCY = 4  # the product's default

ONE_DAEMON = Target(">=", 10_000, " jobs/s")
ONE_SLOT = Target(">=", 2.0, "x bare sqlite3")  # one commit per job where the baseline has two
MANY_SLOTS = Target(">=", 25_000, " jobs/s")
MANY_SLOTS_POSTGRES = Target(">=", 4_000, " jobs/s")
ENQUEUE_RATIO_POSTGRES = Target(">=", 0.8, "x")
DRIVER = {"sqlite": "sqlite3", "postgresql": "psycopg"}
TWO_DAEMONS = Target(">=", 1.5, "x one daemon")
PROCESS_POOL = Target(">=", 2_000, " jobs/s")
ENQUEUE_ONE = Target(">=", 3_000, " jobs/s")
ENQUEUE_BATCHED = Target(">=", 100_000, " jobs/s")
ENQUEUE_RATIO = Target(">=", 0.75, "x")
DEPTH = Target(">=", 90, "%")


@dataclass(frozen=True)
class Sizes:
    jobs: int  # processing, baseline and depth
    enqueue_single: int
    enqueue_batched: int
    enqueue_seconds: float  # per enqueue measurement, whichever comes first
    cli_calls: int
    history_rows: int
    # Rates on a shared VM swing by a quarter from run to run: each processing, baseline and
    # depth figure is the median of this many runs.
    repeats: int = 1


# -- enqueue ---------------------------------------------------------------------------------


def enqueue(bench: Bench, sizes: Sizes, report: Report) -> None:
    db = bench.fresh_db("enqueue")
    with bench.open(db) as client:
        bench.progress(f"enqueue: Client.enqueue, up to {sizes.enqueue_single:,} jobs")

        def one() -> int:
            client.enqueue("noop")
            return 1

        count, seconds = _time_box(one, sizes.enqueue_single, sizes.enqueue_seconds)
        label = "Client.enqueue, one job per transaction"
        _record_enqueue(report, "single", label, count, seconds, dialect=bench.dialect)
        _bare_insert(bench, sizes, report, count / seconds)
        bench.progress(f"enqueue: Client.enqueue_many, up to {sizes.enqueue_batched:,} jobs")
        batch = [{"type": "noop"}] * ENQUEUE_BATCH
        count, seconds = _time_box(
            lambda: len(client.enqueue_many(batch)), sizes.enqueue_batched, sizes.enqueue_seconds
        )
        label = f"Client.enqueue_many, {ENQUEUE_BATCH:,} jobs per call"
        _record_enqueue(
            report, "batched", label, count, seconds, batch=ENQUEUE_BATCH, dialect=bench.dialect
        )
    bench.progress(f"enqueue: {sizes.cli_calls} `durableq enqueue` subprocesses")
    _cli_enqueue(bench, db, sizes.cli_calls, report)


def _bare_insert(bench: Bench, sizes: Sizes, report: Report, enqueue_rate: float) -> None:
    """The same inserts through the bare sqlite3 module, one per transaction, at the same
    durability, into a database made the same way: an enqueue's ratio to it is comparable
    across machines. On a PostgreSQL server, psycopg's."""
    db = bench.fresh_db("enqueue-bare")
    bench.progress(f"enqueue: bare {DRIVER[bench.dialect]} inserts, up to {sizes.enqueue_single:,}")
    if isinstance(db, str):
        count, seconds = postgres.insert_one_each(db, sizes.enqueue_single, sizes.enqueue_seconds)
    else:
        count, seconds = insert_one_each(
            db, bench.synchronous, sizes.enqueue_single, sizes.enqueue_seconds
        )
    ratio = enqueue_rate / (count / seconds)
    figures = {"jobs": count, "seconds": seconds, "jobs_per_s": count / seconds, "ratio": ratio}
    report.record("enqueue", "bare_insert", figures)
    report.row(
        "enqueue",
        f"bare {DRIVER[bench.dialect]} insert, one job per transaction",
        f"{rate(count / seconds)}; Client.enqueue is {ratio:.2f}x it",
        target=ENQUEUE_RATIO if bench.server is None else ENQUEUE_RATIO_POSTGRES,
        figure="enqueue.bare_insert.ratio",
    )


def _time_box(operation: Callable[[], int], count: int, seconds: float) -> tuple[int, float]:
    """Repeat `operation` (which returns how many jobs it did) up to `count` jobs or `seconds`."""
    done = 0
    started = time.perf_counter()
    while done < count and time.perf_counter() - started < seconds:
        done += operation()
    return done, time.perf_counter() - started


def _record_enqueue(
    report: Report,
    key: str,
    label: str,
    count: int,
    seconds: float,
    batch: int = 1,
    dialect: str = "sqlite",
) -> None:
    figures = {"jobs": count, "seconds": seconds, "jobs_per_s": count / seconds}
    if batch > 1:
        figures["batch_size"] = batch
    report.record("enqueue", key, figures)
    target: Target | None = ENQUEUE_BATCHED if batch > 1 else ENQUEUE_ONE
    if dialect != "sqlite":
        target = None  # the goals are SQLite's; PostgreSQL's is the ratio to bare psycopg
    result = f"{rate(count / seconds)} ({count:,} in {seconds:.2f}s)"
    report.row("enqueue", label, result, target=target, figure=f"enqueue.{key}.jobs_per_s")


def _cli_enqueue(bench: Bench, db: Db, calls: int, report: Report) -> None:
    enqueue_ms = [
        wall_ms(bench, ["-m", "durableq", "--db", str(db), "enqueue", "noop"]) for _ in range(calls)
    ]
    startup_ms = [wall_ms(bench, ["-c", "pass"]) for _ in range(calls)]
    figures = {
        "calls": calls,
        "median_ms": sorted(enqueue_ms)[len(enqueue_ms) // 2],
        "min_ms": min(enqueue_ms),
        "max_ms": max(enqueue_ms),
        "python_startup_ms": min(startup_ms),
    }
    report.record("enqueue", "cli", figures)
    result = (
        f"median {ms(figures['median_ms'])} per call (min {number(figures['min_ms'])}, "
        f"bare `python -c pass` {number(figures['python_startup_ms'])})"
    )
    report.row("enqueue", f"CLI `durableq enqueue noop`, {calls} calls", result)


def wall_ms(bench: Bench, args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, env=bench.environment(), timeout=120
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(args)}` failed: {done.stderr.decode(errors='replace')}")
    return elapsed


# -- processing --------------------------------------------------------------------------------


def baseline(bench: Bench, sizes: Sizes, report: Report) -> float:
    """Bare sqlite3's rate (psycopg's on a server), in this process, on the same workload;
    returns jobs/s."""
    driver = DRIVER[bench.dialect]
    runs = []
    for attempt in range(sizes.repeats):
        db = bench.fresh_db(f"baseline-{attempt}", sizes.jobs)
        bench.progress(f"baseline: bare {driver} claiming and completing {sizes.jobs:,} jobs")
        if isinstance(db, str):
            postgres.claim_and_complete_all(db)
        else:
            claim_and_complete_all(db, bench.synchronous)
        runs.append(timings.run_of(db))
    run = median_run(runs)
    report.record("baseline", f"bare_{driver}", _run_figures(run, runs))
    label = f"bare {driver}: claim + complete, one transaction each"
    report.row("baseline", label, _run_result(run, runs))
    return run.processing_rate


def processing(bench: Bench, sizes: Sizes, report: Report, baseline_rate: float | None) -> None:
    rates: dict[tuple[int, int, str], float] = {}
    for daemons, concurrency, pool in PROCESSING:
        plural = "s" if daemons > 1 else ""
        label = f"{daemons} daemon{plural}, --concurrency {concurrency}"
        label += " --pool process" if pool == "process" else ""
        suffix = "_process" if pool == "process" else ""
        runs, walls = [], []
        for attempt in range(sizes.repeats):
            name = f"processing-{daemons}x{concurrency}{suffix}-{attempt}"
            db = bench.fresh_db(name, sizes.jobs)
            bench.progress(f"processing: {label}, {sizes.jobs:,} no-op jobs")
            walls.append(run_burst(bench, db, daemons, concurrency, sizes.jobs, pool))
            runs.append(timings.run_of(db))
        run = median_run(runs)
        rates[daemons, concurrency, pool] = run.processing_rate
        # The key says the pool ("_process"); every figure stays a number.
        figures = {"daemons": daemons, "concurrency": concurrency, **_run_figures(run, runs)}
        figures["wall_seconds"] = walls[runs.index(run)]
        result = _run_result(run, runs)
        if baseline_rate is not None:
            figures["vs_baseline"] = run.processing_rate / baseline_rate
            result += f", {figures['vs_baseline']:.2f}x bare {DRIVER[bench.dialect]}"
        alone = rates.get((1, concurrency, pool))
        if daemons > 1 and alone:
            figures["vs_one_daemon"] = run.processing_rate / alone
            result += f", {figures['vs_one_daemon']:.2f}x one daemon"
        key = f"daemons{daemons}_concurrency{concurrency}{suffix}"
        report.record("processing", key, figures)
        target, measured = _processing_target(bench.dialect, daemons, concurrency, pool, figures)
        figure = f"processing.{key}.{measured}" if target else ""
        report.row("processing", label, result, target=target, figure=figure)


def _processing_target(
    dialect: str, daemons: int, concurrency: int, pool: str, figures: dict[str, float]
) -> tuple[Target | None, str]:
    """The goal of one processing row, and which of its figures it judges."""
    if dialect != "sqlite":
        return (MANY_SLOTS_POSTGRES, "jobs_per_s") if concurrency >= 16 else (None, "")
    if pool == "process":
        return PROCESS_POOL, "jobs_per_s"
    if daemons > 1:
        return (TWO_DAEMONS, "vs_one_daemon") if "vs_one_daemon" in figures else (None, "")
    if concurrency == 1:
        return (ONE_SLOT, "vs_baseline") if "vs_baseline" in figures else (None, "")
    return (MANY_SLOTS if concurrency >= 16 else ONE_DAEMON), "jobs_per_s"


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.processing_rate)[len(runs) // 2]


def run_burst(
    bench: Bench, db: Db, daemons: int, concurrency: int, jobs: int, pool: str = "thread"
) -> float:
    """Burst daemons on `db` until nothing is due; returns the wall time, start-up included."""
    started = time.perf_counter()
    with ExitStack() as stack:
        running = [
            stack.enter_context(bench.daemon(db, concurrency, burst=True, pool=pool))
            for _ in range(daemons)
        ]
        for daemon in running:
            daemon.wait(finish_timeout(jobs))
    return time.perf_counter() - started


def _run_figures(run: Run, runs: list[Run]) -> dict[str, float]:
    return {
        "jobs": run.jobs,
        "processed": run.processed,
        "seconds": run.processing_seconds,
        "jobs_per_s": run.processing_rate,
        "runs": len(runs),
        "min_jobs_per_s": min(r.processing_rate for r in runs),
        "max_jobs_per_s": max(r.processing_rate for r in runs),
    }


def _run_result(run: Run, runs: list[Run]) -> str:
    text = f"{rate(run.processing_rate)} ({run.processed:,} in {run.processing_seconds:.2f}s"
    if len(runs) > 1:
        low, high = (f(r.processing_rate for r in runs) for f in (min, max))
        text += f"; median of {len(runs)}, {number(low)}-{number(high)}"
    return text + ")"


# -- depth: the same claim rate with a long history of finished jobs --------------------------

HISTORY = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, run_at,
    created_at, updated_at, started_at, finished_at, cancel_requested)
SELECT 'default', 'noop', '{}', 'completed', 0, 1, 10, at, at, at, at, at, 0
FROM (SELECT printf('%s.%06d', datetime(:base + i / 1000, 'unixepoch'), (i % 1000) * 1000) AS at
      FROM n)
"""


def depth(bench: Bench, sizes: Sizes, report: Report) -> None:
    history_db = bench.fresh("depth-history")
    bench.progress(f"depth: building a history of {sizes.history_rows:,} finished jobs")
    build_seconds = build_history(history_db, sizes.history_rows)
    empties, deeps = [], []
    for attempt in range(sizes.repeats):  # interleaved, so drifts in the machine hit both
        empty_db = bench.fresh(f"depth-empty-{attempt}", sizes.jobs)
        bench.progress(f"depth: empty history, {sizes.jobs:,} jobs")
        run_burst(bench, empty_db, 1, DEPTH_CONCURRENCY, sizes.jobs)
        empties.append(timings.run_of(empty_db))

        after_id = timings.max_job_id(history_db)  # earlier rounds' jobs join the history
        with bench.open(history_db) as client:
            enqueue_noops(client, sizes.jobs)
        bench.progress(f"depth: {after_id:,} finished jobs in the table, {sizes.jobs:,} jobs")
        run_burst(bench, history_db, 1, DEPTH_CONCURRENCY, sizes.jobs)
        deeps.append(timings.run_of(history_db, after_id=after_id))
    empty, deep = median_run(empties), median_run(deeps)

    report.record("depth", "empty", _run_figures(empty, empties))
    report.record(
        "depth",
        "history",
        {
            **_run_figures(deep, deeps),
            "history_rows": sizes.history_rows,
            "build_seconds": build_seconds,
        },
    )
    ratio = deep.processing_rate / empty.processing_rate
    report.record("depth", "ratio", {"percent": ratio * 100})
    daemon = f"1 daemon, --concurrency {DEPTH_CONCURRENCY}"
    report.row("depth", f"{daemon}, empty history", _run_result(empty, empties))
    report.row("depth", f"{daemon}, {sizes.history_rows:,} finished jobs", _run_result(deep, deeps))
    report.row(
        "depth",
        "rate with the history / rate without",
        f"{ratio * 100:.0f}%",
        target=DEPTH,
        figure="depth.ratio.percent",
    )


def build_history(db: Path, rows: int) -> float:
    """Finished jobs straight into the real table, in one transaction: seconds, not minutes."""
    started = time.perf_counter()
    base = int(time.time()) - 7_200 - rows // 1000  # all finished well before the workload
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(HISTORY, {"rows": rows, "base": base})
        connection.execute("COMMIT")
    return time.perf_counter() - started
