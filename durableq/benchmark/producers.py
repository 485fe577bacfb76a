"""Many producers at once, as a web app with many worker processes enqueues (one job per request,
one transaction each) while daemons run: the total rate against one producer's alone in the same
run, and how long each enqueue waited. SQLite has one writer at a time: what this measures is how
fairly and how briefly producers and daemons take turns on its lock."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durableq.benchmark.harness import Bench, BenchError, percentiles, wait_for
from durableq.benchmark.latency import wait_ready
from durableq.benchmark.report import Report, Target, ms, number, rate

PRODUCERS = 16
DAEMONS, CONCURRENCY = 2, 4
TOGETHER = Target(">=", 0.8, "x")
P99 = Target("<=", 50, " ms")


@dataclass(frozen=True)
class Sizes:
    per_producer: int  # enqueues by each of the many
    solo: int  # enqueues by the one producer alone


def producers(bench: Bench, sizes: Sizes, report: Report) -> None:
    db = bench.fresh("producers")
    bench.progress(f"producers: one producer alone, {sizes.solo:,} enqueues")
    solo = _run(bench, db, 1, sizes.solo)
    solo_rate = solo["enqueued"] / solo["seconds"]
    bench.progress(
        f"producers: {PRODUCERS} producers x {sizes.per_producer} enqueues while {DAEMONS} "
        f"daemons (--concurrency {CONCURRENCY}) run"
    )
    with ExitStack() as stack:
        daemons = [
            stack.enter_context(bench.daemon(db, CONCURRENCY, burst=False)) for _ in range(DAEMONS)
        ]
        for daemon in daemons:
            wait_ready(db, daemon)
        many = _run(bench, db, PRODUCERS, sizes.per_producer)
    many_rate = many["enqueued"] / many["seconds"]
    ratio = many_rate / solo_rate
    latency = percentiles(many["latencies_ms"])
    solo_latency = percentiles(solo["latencies_ms"])
    report.record(
        "producers",
        "solo",
        {"enqueued": solo["enqueued"], "jobs_per_s": solo_rate, "latency_ms": solo_latency},
    )
    report.record(
        "producers",
        "many",
        {
            "producers": PRODUCERS,
            "daemons": DAEMONS,
            "enqueued": many["enqueued"],
            "seconds": many["seconds"],
            "jobs_per_s": many_rate,
            "ratio_to_solo": ratio,
            "latency_ms": latency,
        },
    )
    report.row(
        "producers",
        "one producer alone, Client.enqueue",
        f"{rate(solo_rate)}; enqueue p50 {ms(solo_latency['p50'])}, p99 {ms(solo_latency['p99'])}",
    )
    report.row(
        "producers",
        f"{PRODUCERS} producer processes at once + {DAEMONS} daemons, in total",
        f"{rate(many_rate)} ({many['enqueued']:,} jobs), {ratio:.2f}x one producer alone",
        target=TOGETHER,
        figure="producers.many.ratio_to_solo",
    )
    report.row(
        "producers",
        f"{PRODUCERS} producers: each enqueue's wait, p99",
        f"p50 {ms(latency['p50'])}, p99 {ms(latency['p99'])}, max {number(latency['max'])} ms",
        target=P99,
        figure="producers.many.latency_ms.p99",
    )


def _run(bench: Bench, db: Path, count: int, each: int) -> dict[str, Any]:
    """`count` producer processes of `each` enqueues, started together once all of them have
    imported and opened the database (16 importing at once take seconds on 2 cores); their
    sum."""
    barrier = bench.database("barrier").with_suffix("")
    barrier.mkdir()
    args = ["-m", "durableq.benchmark.producer", "--db", str(db), "--count", str(each)]
    args += ["--barrier", str(barrier)]
    with ExitStack() as stack:
        running = [stack.enter_context(bench.spawn("producer", args)) for _ in range(count)]
        wait_for(
            lambda: len(list(barrier.glob("ready-*"))) == count,
            timeout=120,
            what="the producers to start",
        )
        (barrier / "go").touch()
        results = []
        for producer in running:
            producer.wait(timeout=60 + each / 10)
            lines = [line for line in producer.output().splitlines() if line.startswith("{")]
            if not lines:
                raise BenchError(f"a producer printed no result{producer.tail()}")
            results.append(json.loads(lines[-1]))
    started = min(result["started"] for result in results)
    ended = max(result["ended"] for result in results)
    return {
        "enqueued": sum(result["enqueued"] for result in results),
        "seconds": ended - started,
        "latencies_ms": [value for result in results for value in result["latencies_ms"]],
    }
