"""The HTTP section: acknowledged jobs/s through `durableq serve`, against a bare endpoint.

The server and the clients are separate processes (the clients: benchmark/http_load.py). Each
client count runs for a fixed time on a fresh database; afterwards the jobs in the database are
counted, and a count below the acknowledged one fails the run (a 201 is a promise).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durableq.benchmark.harness import Bench, BenchError, Process, percentiles, wait_for
from durableq.benchmark.report import Report, Target, ms, number, rate

CLIENTS = (1, 8, 32)
BATCH = 1_000
GROUP_COMMIT = Target(">=", 3, "x")  # 32 clients against one
BATCHED = Target(">=", 50_000, " jobs/s")


@dataclass(frozen=True)
class Sizes:
    seconds: float  # per client count
    batch_seconds: float


def http(bench: Bench, sizes: Sizes, report: Report) -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        report.row("http", "skipped", "needs the http extra: pip install 'durableq[http]'")
        return
    one_client = 0.0
    for clients in CLIENTS:
        bare = _bare(bench, clients, sizes.seconds)
        figures = _served(bench, f"http-{clients}", clients, sizes.seconds, 1)
        figures["bare_endpoint"] = bare
        figures["ratio_to_bare"] = figures["jobs_per_s"] / bare["jobs_per_s"]
        if clients == 1:
            one_client = figures["jobs_per_s"]
        figures["ratio_to_one_client"] = figures["jobs_per_s"] / one_client
        report.record("http", f"clients_{clients}", figures)
        label = f"POST /api/v1/jobs, {clients} keep-alive client(s)"
        target = GROUP_COMMIT if clients == CLIENTS[-1] else None
        figure = f"http.clients_{clients}.ratio_to_one_client" if target else ""
        report.row("http", label, _result(figures), target=target, figure=figure)
    figures = _served(bench, "http-batch", 1, sizes.batch_seconds, BATCH)
    report.record("http", "batch", figures)
    label = f"POST /api/v1/jobs/batch, {BATCH:,} jobs per request"
    report.row("http", label, _result(figures), target=BATCHED, figure="http.batch.jobs_per_s")


def _served(bench: Bench, name: str, clients: int, seconds: float, batch: int) -> dict[str, Any]:
    db = bench.fresh(name)
    where = f"127.0.0.1:{_free_port()}"
    args = ["-m", "durableq", "--db", str(db), "serve", "--bind", where, "--log-level", "warning"]
    path = "/api/v1/jobs/batch" if batch > 1 else "/api/v1/jobs"
    with bench.spawn("server", args) as server:
        _wait_ready(server, where)
        bench.progress(f"http: {clients} client(s) posting to {path} for {seconds:.0f}s")
        figures = _load(bench, where, path, clients, seconds, batch)
        server.stop()
    stored = _count_jobs(db)
    if stored < figures["acknowledged"]:
        raise BenchError(f"{figures['acknowledged']} jobs acknowledged but {stored} stored")
    figures["stored"] = stored
    return figures


def _bare(bench: Bench, clients: int, seconds: float) -> dict[str, Any]:
    where = f"127.0.0.1:{_free_port()}"
    with bench.spawn("bare", ["-m", "durableq.benchmark.bare", where]) as server:
        _wait_ready(server, where)
        bench.progress(f"http: {clients} client(s) posting to a bare endpoint for {seconds:.0f}s")
        figures = _load(bench, where, "/api/v1/jobs", clients, seconds, 1)
    return {key: figures[key] for key in ("jobs_per_s", "latency_ms")}


def _load(
    bench: Bench, where: str, path: str, clients: int, seconds: float, batch: int
) -> dict[str, Any]:
    module = "durableq.benchmark.http_load"
    args = [sys.executable, "-m", module, where, path, str(clients), str(seconds), str(batch)]
    done = subprocess.run(args, capture_output=True, env=bench.environment(), timeout=seconds + 120)
    if done.returncode != 0:
        raise BenchError(f"the HTTP load failed: {done.stderr.decode(errors='replace')[-2000:]}")
    raw = json.loads(done.stdout)
    if raw["refusals"]:
        raise BenchError(f"the server refused requests: {raw['refusals']}")
    latencies = raw["latencies_ms"]
    return {
        "clients": clients,
        "jobs_per_request": batch,
        "acknowledged": raw["acknowledged"],
        "requests": len(latencies),
        "seconds": raw["seconds"],
        "jobs_per_s": raw["acknowledged"] / raw["seconds"],
        "latency_ms": percentiles(latencies),
    }


def _result(figures: dict[str, Any]) -> str:
    latency = figures["latency_ms"]
    text = (
        f"{rate(figures['jobs_per_s'])}, request p50 {ms(latency['p50'])} p99 {ms(latency['p99'])}"
    )
    if "bare_endpoint" in figures:
        bare = figures["bare_endpoint"]["jobs_per_s"]
        text += f" (bare endpoint {number(bare)}/s, {figures['ratio_to_bare']:.2f}x"
        text += f"; {figures['ratio_to_one_client']:.2f}x one client)"
    return text


def _wait_ready(server: Process, where: str) -> None:
    def up() -> bool:
        if server.popen.poll() is not None:
            raise BenchError(f"the server exited with {server.popen.returncode}{server.tail()}")
        try:
            with urllib.request.urlopen(f"http://{where}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(up, 30, f"the server on {where}")


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _count_jobs(db: Path) -> int:
    with closing(sqlite3.connect(db)) as connection:
        count: int = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
        return count
