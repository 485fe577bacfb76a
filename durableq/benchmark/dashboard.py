"""The dashboard section: each page's server time on a big table.

A database with `history_rows` finished jobs (1,000,000 in the full run), a thousand failed ones
with their errors and a thousand pending, the throughput history rolled up; then every page is
requested in-process through Starlette's TestClient (the app's own time: routing, reads,
templates; no network), five times each, after the server's start-up warmed its snapshots as
`durableq serve` does. The figure per page is the median; the target is the issue's 200 ms.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import statistics
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from durableq.benchmark.harness import Bench
from durableq.benchmark.report import Report, Target, ms
from durableq.benchmark.throughput import Sizes, build_history

PAGES = {
    "overview": "/",
    "overview_24h": "/?window=24h",
    "overview_7d": "/?window=7d",
    "jobs": "/jobs",
    "jobs_failed": "/jobs?status=failed",
    "jobs_pending": "/jobs?status=pending",
    "jobs_search_payload": "/jobs?q=no-such-text",
    "job": "/jobs/1",
    "queues": "/queues",
    "workers": "/workers",
    "schedules": "/schedules",
}
REQUESTS = 5
PAGE = Target("<=", 200, " ms")
WARM_UP = 30.0  # seconds at most for the server's first reads (its snapshots) to come in

EXTRA = """
INSERT INTO jobs (queue, type, payload, status, priority, attempts, max_attempts, run_at,
    created_at, updated_at, started_at, finished_at, last_error, cancel_requested)
SELECT 'mail', 'email.send', '{"to": "user@example.com"}', :status, 0, 1, 1,
    :now, :now, :now, :now, CASE :status WHEN 'failed' THEN :now END,
    CASE :status WHEN 'failed' THEN 'SMTPError: 550' END, 0
FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
      SELECT i FROM n)
"""
ERRORS = """
INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at)
SELECT id, 1, last_error, 'Traceback ...', finished_at FROM jobs WHERE status = 'failed'
"""


def dashboard(bench: Bench, sizes: Sizes, report: Report) -> None:
    if importlib.util.find_spec("fastapi") is None:
        report.row("dashboard", "skipped", "needs the http extra: pip install 'durableq[http]'")
        return
    from fastapi.testclient import TestClient

    from durableq.http.app import create_app

    db = bench.fresh("dashboard")
    bench.progress(f"dashboard: a table of {sizes.history_rows:,} finished jobs")
    build_history(db, sizes.history_rows)
    _add_failed_and_pending(db)
    with bench.open(db) as client:
        started = time.perf_counter()
        client.store.roll_up(client.clock(), settle=70, keep=7 * 86400)
        report.record("dashboard", "first_rollup", {"seconds": time.perf_counter() - started})
        with TestClient(create_app(client)) as api:
            _warm(api)
            for name, path in PAGES.items():
                bench.progress(f"dashboard: {path}")
                figures = _time_page(api, path)
                figures["rows"] = sizes.history_rows
                report.record("dashboard", name, figures)
                report.row(
                    "dashboard",
                    f"GET {path}, {sizes.history_rows:,} jobs in the table",
                    f"{ms(figures['median_ms'])} median, first {ms(figures['first_ms'])}",
                    target=PAGE,
                    figure=f"dashboard.{name}.median_ms",
                )


def _add_failed_and_pending(db: Path) -> None:
    now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        for status in ("failed", "pending"):
            connection.execute(EXTRA, {"status": status, "now": now})
        connection.execute(ERRORS)
        connection.execute("COMMIT")


def _warm(api: Any) -> None:
    """The server reads its snapshots as it starts; wait until the overview's is in."""
    snapshot = api.app.state.stats_snapshot
    deadline = time.monotonic() + WARM_UP
    while not snapshot.ready() and time.monotonic() < deadline:
        time.sleep(0.05)


def _time_page(api: Any, path: str) -> dict[str, Any]:
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = api.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
    return {"first_ms": times[0], "median_ms": statistics.median(times), "max_ms": max(times)}
