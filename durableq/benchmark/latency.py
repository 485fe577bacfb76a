"""Live daemons: end-to-end with a concurrent producer, idle pickup and CPU, and memory."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from durableq.benchmark import timings
from durableq.benchmark.harness import (
    Bench,
    BenchError,
    Db,
    Process,
    cpu_seconds,
    enqueue_noops,
    finish_timeout,
    percentiles,
    rss_mb,
    wait_for,
)
from durableq.benchmark.report import Report, Target, ms, number, rate

CONCURRENCY = 4  # the product's default
PICKUP_P50 = Target("<=", 10, " ms")
PICKUP_P50_POSTGRES = Target("<=", 5, " ms")  # a NOTIFY wakes the daemon at once
WITH_DAEMON = Target(">=", 0.9, "x the producer alone")
PICKUP_P99 = Target("<=", 50, " ms")
IDLE_CPU = Target("<=", 1, "% of a core")
RSS = Target("<=", 40, " MB")  # issue 14: "daemon RSS <= 40 MB idle and flat"
RSS_GROWTH = Target("<=", 10, "%")


@dataclass(frozen=True)
class Sizes:
    e2e_jobs: int
    e2e_seconds: float  # the producer stops at e2e_jobs or after this long
    idle_jobs: int
    idle_interval: float  # seconds between the idle daemon's jobs
    cpu_window: float
    memory_jobs: int
    settle: float  # after a daemon registers, before measuring it idle


def end_to_end(bench: Bench, sizes: Sizes, report: Report) -> None:
    alone = bench.fresh_db("producer-alone")
    bench.progress(f"end to end: the producer alone, up to {sizes.e2e_jobs:,} jobs")
    solo = produce_figures(bench, alone, sizes.e2e_jobs, seconds=sizes.e2e_seconds)
    solo_rate = solo["enqueued"] / solo["seconds"]
    db = bench.fresh_db("end-to-end")
    bench.progress(f"end to end: a producer enqueuing up to {sizes.e2e_jobs:,} jobs, one daemon")
    with bench.daemon(db, CONCURRENCY, burst=False) as daemon:
        wait_ready(db, daemon)
        enqueued = produce(bench, db, sizes.e2e_jobs, seconds=sizes.e2e_seconds)
        wait_for(lambda: timings.unfinished(db) == 0, finish_timeout(enqueued), "the daemon")
        daemon.stop()
    run = timings.run_of(db)
    latency = percentiles(timings.pickup_latencies_ms(db))
    figures = {
        "jobs": run.jobs,
        "enqueued": enqueued,
        "processed": run.processed,
        "seconds": run.end_to_end_seconds,
        "jobs_per_s": run.end_to_end_rate,
        "producer_alone_jobs_per_s": solo_rate,
        "vs_producer_alone": run.end_to_end_rate / solo_rate,
        "latency_ms": latency,
    }
    report.record("end_to_end", "producer_and_daemon", figures)
    label = f"producer process + 1 daemon (--concurrency {CONCURRENCY})"
    result = (
        f"{rate(run.end_to_end_rate)} ({run.processed:,} jobs, first enqueue to last done), "
        f"{figures['vs_producer_alone']:.2f}x the producer alone ({rate(solo_rate)})"
    )
    key = "end_to_end.producer_and_daemon"
    report.row("end to end", label, result, target=WITH_DAEMON, figure=f"{key}.vs_producer_alone")
    report.row(
        "end to end",
        "enqueue-to-start latency",
        _latency_text(latency),
        target=PICKUP_P99,
        figure=f"{key}.latency_ms.p99",
    )


def idle(bench: Bench, sizes: Sizes, report: Report) -> None:
    db = bench.fresh_db("idle")
    bench.progress(f"idle: CPU of an idle daemon over {sizes.cpu_window:g}s")
    with bench.daemon(db, CONCURRENCY, burst=False) as daemon:
        wait_ready(db, daemon)
        time.sleep(sizes.settle)
        cpu_percent = _cpu_percent(daemon.pid, sizes.cpu_window)
        bench.progress(
            f"idle: {sizes.idle_jobs} jobs enqueued one at a time, every "
            f"{sizes.idle_interval * 1000:g} ms"
        )
        enqueued = produce(bench, db, sizes.idle_jobs, interval=sizes.idle_interval)
        wait_for(lambda: timings.unfinished(db) == 0, finish_timeout(enqueued), "the daemon")
        daemon.stop()
    run = timings.run_of(db)
    latency = percentiles(timings.pickup_latencies_ms(db))
    report.record(
        "idle",
        "pickup",
        {
            "jobs": run.jobs,
            "enqueued": enqueued,
            "processed": run.processed,
            "interval_ms": sizes.idle_interval * 1000,
            "latency_ms": latency,
        },
    )
    report.record("idle", "cpu", {"window_s": sizes.cpu_window, "percent_of_core": cpu_percent})
    label = f"pickup of {enqueued} spaced jobs, enqueue-to-start"
    p50, p99 = "idle.pickup.latency_ms.p50", "idle.pickup.latency_ms.p99"
    p50_target = PICKUP_P50 if bench.server is None else PICKUP_P50_POSTGRES
    report.row("idle", f"{label}, p50", ms(latency["p50"]), target=p50_target, figure=p50)
    report.row("idle", f"{label}, p99", _latency_text(latency), target=PICKUP_P99, figure=p99)
    if cpu_percent is None:
        report.row("idle", "CPU of an idle daemon", "unavailable (no /proc)")
    else:
        report.row(
            "idle",
            f"CPU of an idle daemon over {sizes.cpu_window:g}s",
            f"{cpu_percent:.2f}% of a core",
            target=IDLE_CPU,
            figure="idle.cpu.percent_of_core",
        )


def memory(bench: Bench, sizes: Sizes, report: Report) -> None:
    if rss_mb(os.getpid()) is None:
        report.row("memory", "daemon RSS", "unavailable (no /proc)")
        return
    db = bench.fresh("memory")
    warmup = max(1, min(1_000, sizes.memory_jobs // 10))
    bench.progress(f"memory: daemon RSS while it runs {sizes.memory_jobs:,} jobs")
    with bench.daemon(db, CONCURRENCY, burst=False) as daemon:
        wait_ready(db, daemon)
        time.sleep(sizes.settle)
        start = _rss(daemon)
        with RssSampler(daemon.pid) as sampler:
            _feed(bench, db, warmup)
            warm = _rss(daemon)
            _feed(bench, db, sizes.memory_jobs - warmup)
            end = _rss(daemon)
        daemon.stop()
    run = timings.run_of(db)
    figures = {
        "jobs": run.jobs,
        "processed": run.processed,
        "rss_start_mb": start,
        "rss_warm_mb": warm,
        "warmup_jobs": warmup,
        "rss_end_mb": end,
        "rss_peak_mb": max(sampler.peak, end),
        "growth_percent": (end - start) / start * 100,
        "growth_after_warmup_percent": (end - warm) / warm * 100,
    }
    report.record("memory", "daemon", figures)
    start_text, peak_text = f"{number(start)} MB", f"{number(figures['rss_peak_mb'])} MB"
    report.row(
        "memory",
        "daemon RSS, idle after start-up",
        start_text,
        target=RSS,
        figure="memory.daemon.rss_start_mb",
    )
    report.row(
        "memory",
        f"daemon RSS, peak over {run.processed:,} jobs",
        f"{peak_text} (at the end {number(end)} MB)",
        target=RSS,
        figure="memory.daemon.rss_peak_mb",
    )
    report.row(
        "memory",
        f"RSS growth over {run.processed:,} jobs",
        f"{figures['growth_percent']:+.1f}% ({figures['growth_after_warmup_percent']:+.1f}% "
        f"after the first {warmup:,})",
        target=RSS_GROWTH,
        figure="memory.daemon.growth_percent",
    )


# -- helpers ---------------------------------------------------------------------------------


def wait_ready(db: Db, daemon: Process, timeout: float = 60) -> None:
    def ready() -> bool:
        if daemon.popen.poll() is not None:
            raise BenchError(f"the daemon exited with {daemon.popen.returncode}{daemon.tail()}")
        return timings.worker_registered(db, daemon.pid)

    wait_for(ready, timeout, "the daemon to start")


def produce(
    bench: Bench, db: Db, count: int, *, interval: float = 0.0, seconds: float = 3_600
) -> int:
    """Run the producer process to its end; returns how many jobs it enqueued."""
    return int(produce_figures(bench, db, count, interval=interval, seconds=seconds)["enqueued"])


def produce_figures(
    bench: Bench, db: Db, count: int, *, interval: float = 0.0, seconds: float = 3_600
) -> dict[str, Any]:
    """Run the producer process to its end; returns what it printed (producer.py)."""
    args = ["-m", "durableq.benchmark.producer", "--db", str(db), "--count", str(count)]
    args += ["--interval", str(interval), "--seconds", str(seconds)]
    with bench.spawn("producer", args) as producer:
        producer.wait(timeout=seconds + finish_timeout(count))
        lines = [line for line in producer.output().splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"the producer printed no result{producer.tail()}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def _feed(bench: Bench, db: Db, jobs: int) -> None:
    """Enqueue (in batches, from this process) and wait until the live daemon has done them."""
    with bench.open(db) as client:
        enqueue_noops(client, jobs)
    wait_for(lambda: timings.unfinished(db) == 0, finish_timeout(jobs), "the daemon", 0.1)


def _cpu_percent(pid: int, window: float) -> float | None:
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    after, elapsed = cpu_seconds(pid), time.monotonic() - started
    if before is None or after is None:
        return None
    return (after - before) / elapsed * 100


def _rss(daemon: Process) -> float:
    value = rss_mb(daemon.pid)
    if value is None:
        raise BenchError("cannot read the daemon's memory: /proc/PID/status is unavailable")
    return value


def _latency_text(latency: dict[str, float]) -> str:
    return (
        f"p50 {number(latency['p50'])}, p95 {number(latency['p95'])}, "
        f"p99 {number(latency['p99'])}, max {ms(latency['max'])}"
    )


class RssSampler:
    """Reads the daemon's VmRSS every `interval` seconds in a thread, keeping the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            value = rss_mb(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)
