"""`durableq serve` as users run it: a real server process, a real daemon, real HTTP.

Submit with a plain HTTP client (urllib, as curl would), let a daemon run the job, read the
result; the seed's three routes; the token; SIGTERM; and the bind rule.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import DURABLEQ, environment, run_cli, start_worker, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*DURABLEQ, "--db", str(db), "serve", "--bind", f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env or environment(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base), timeout=30, what="the server to answer /healthz")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        output = process.stdout.read().decode() if process.stdout else ""
        assert code == 0, output
        assert "Traceback" not in output, output


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_submit_run_and_read_the_result_over_http(tmp_path: Path) -> None:
    db = tmp_path / "durableq.db"
    with server(db) as base:
        status, headers, job = call(
            "POST", f"{base}/api/v1/jobs", {"type": "echo", "payload": {"hello": "world"}}
        )
        assert status == 201 and headers["location"] == f"/api/v1/jobs/{job['id']}"
        seed_status, _, seed_job = call(
            "POST", f"{base}/job", {"type": "echo", "payload": {"n": 2}}
        )
        assert seed_status == 201
        daemon = start_worker(db, "--burst", app=None)
        assert daemon.wait(timeout=60) == 0
        status, _, result = call("GET", f"{base}/api/v1/jobs/{job['id']}/result?wait=10s")
        assert (status, result["status"], result["result"]) == (
            200,
            "completed",
            {"hello": "world"},
        )
        assert call("GET", f"{base}/status/{seed_job['id']}")[2]["status"] == "completed"
        assert call("GET", f"{base}/result/{seed_job['id']}")[2]["result"] == {"n": 2}
        status, _, missing = call("GET", f"{base}/result/999")
        assert (status, missing["code"]) == (404, "job_not_found")
    listed = json.loads(run_cli(["jobs", "list", "--json"], db).stdout)
    assert {job["status"] for job in listed} == {"completed"}


def test_a_token_guards_the_api_and_not_healthz(tmp_path: Path) -> None:
    db = tmp_path / "durableq.db"
    with server(db, env=environment(DURABLEQ_API_TOKEN="s3cret")) as base:
        status, headers, problem = call("GET", f"{base}/api/v1/jobs")
        assert (status, problem["code"], headers["www-authenticate"]) == (
            401,
            "unauthorized",
            "Bearer",
        )
        status, _, listed = call(
            "GET", f"{base}/api/v1/jobs", headers={"Authorization": "Bearer s3cret"}
        )
        assert (status, listed["jobs"]) == (200, [])


def test_serve_refuses_an_open_bind_off_loopback(tmp_path: Path) -> None:
    db = tmp_path / "durableq.db"
    refused = run_cli(["serve", "--bind", "0.0.0.0:8080"], db)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("durableq: error: binding to 0.0.0.0 exposes the API")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_a_worker_serves_its_metrics(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    db = tmp_path / "durableq.db"
    port = free_port()
    for n in range(3):
        assert run_cli(["enqueue", "echo", "--payload", json.dumps({"n": n})], db).returncode == 0
    daemon = start_worker(db, "--metrics", f"127.0.0.1:{port}", app=None)
    url = f"http://127.0.0.1:{port}/metrics"

    def finished() -> dict[str, float]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "durableq_jobs_finished_total":
                    values[sample.labels["outcome"]] = sample.value
                elif sample.name == "durableq_workers":
                    values["workers"] = sample.value
        # Gauges come from a snapshot refreshed behind the scrape: wait for both to be seen.
        return values if values.get("completed") == 3 and values.get("workers") == 1 else {}

    try:
        values = wait_until(finished, timeout=30, what="three completions in the metrics")
        assert values["workers"] == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
