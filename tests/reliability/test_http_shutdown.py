"""A 201 is a promise: kill -9 of the server while 16 clients submit loses none of the jobs it
acknowledged; SIGTERM refuses new submissions with 503 (and stores none of those), keeps every
acknowledged one, and exits 0; `worker start --http` refuses submissions while its workers
drain, keeps answering reads, and exits 0 once the running job is done."""

from __future__ import annotations

import http.client
import json
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.test_http_server import call, free_port
from tests.support.processes import DURABLEQ, environment, start_worker, stop, wait_until

CLIENTS = 16


@dataclass
class Outcomes:
    acknowledged: dict[int, dict[str, int]] = field(default_factory=dict)  # id -> payload
    refused: list[dict[str, int]] = field(default_factory=list)  # 503s: payloads
    other: list[str] = field(default_factory=list)  # any other status: a failure
    lost_connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def submitting(port: int, outcomes: Outcomes) -> Iterator[threading.Event]:
    """16 keep-alive clients posting numbered jobs until the event is set (or the server goes)."""
    done = threading.Event()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for sequence in range(100_000):
            if done.is_set():
                return
            payload = {"client": number, "n": sequence}
            try:
                connection.request(
                    "POST",
                    "/api/v1/jobs",
                    json.dumps({"type": "noop", "payload": payload}),
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                body = json.loads(response.read())
            except (OSError, http.client.HTTPException):
                with outcomes.lock:
                    outcomes.lost_connections += 1
                connection.close()
                time.sleep(0.01)
                continue
            with outcomes.lock:
                if response.status == 201:
                    outcomes.acknowledged[int(body["id"])] = payload
                elif response.status == 503 and body["code"] == "draining":
                    outcomes.refused.append(payload)
                else:
                    outcomes.other.append(f"{response.status} {body}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        yield done
    finally:
        done.set()
        for thread in threads:
            thread.join(60)


def stored_payloads(db: Path) -> dict[int, dict[str, int]]:
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT id, payload FROM jobs").fetchall()
    return {job_id: json.loads(payload) for job_id, payload in rows}


def serve(db: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*DURABLEQ, "--db", str(db), "serve", "--bind", f"127.0.0.1:{port}"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    wait_until(lambda: _ready(port), timeout=30, what="the server")
    return process


def _ready(port: int) -> bool:
    try:
        return call("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200
    except OSError:
        return False


def test_kill_9_of_the_server_loses_no_acknowledged_job(tmp_path: Path) -> None:
    db, port = tmp_path / "durableq.db", free_port()
    rounds, acknowledged = 3, 0
    for _ in range(rounds):
        process = serve(db, port, tmp_path / "server.log")
        outcomes = Outcomes()
        with submitting(port, outcomes) as done:
            time.sleep(random.uniform(0.5, 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait()
            done.set()
        stored = stored_payloads(db)
        missing = {i: p for i, p in outcomes.acknowledged.items() if stored.get(i) != p}
        assert missing == {}, f"{len(missing)} acknowledged jobs are not stored"
        assert outcomes.other == []
        assert len(outcomes.acknowledged) > 0
        acknowledged += len(outcomes.acknowledged)
    print(f"\nkill -9 of the server x{rounds}: {acknowledged} jobs acknowledged, 0 missing")


def test_sigterm_refuses_new_submissions_and_keeps_the_accepted(tmp_path: Path) -> None:
    db, port = tmp_path / "durableq.db", free_port()
    log = tmp_path / "server.log"
    process = serve(db, port, log)
    outcomes = Outcomes()
    with submitting(port, outcomes):
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output
    stored = stored_payloads(db)
    assert {i: stored.get(i) for i in outcomes.acknowledged} == outcomes.acknowledged
    refused = {(p["client"], p["n"]) for p in outcomes.refused}
    assert refused and not refused & {(p["client"], p["n"]) for p in stored.values()}
    assert outcomes.other == []
    print(
        f"\nSIGTERM: {len(outcomes.acknowledged)} acknowledged and stored, "
        f"{len(refused)} refused with 503, {outcomes.lost_connections} connections closed"
    )


def test_worker_with_http_refuses_submissions_while_draining(tmp_path: Path) -> None:
    db, port = tmp_path / "durableq.db", free_port()
    log = tmp_path / "worker.log"
    base = f"http://127.0.0.1:{port}"
    daemon = start_worker(db, "--http", f"127.0.0.1:{port}", log_path=log, app=None)
    try:
        wait_until(lambda: _ready(port), timeout=30, what="the worker's API")
        status, _, slow = call(
            "POST", f"{base}/api/v1/jobs", {"type": "sleep", "payload": {"seconds": 3}}
        )
        assert status == 201
        wait_until(
            lambda: call("GET", f"{base}/api/v1/jobs/{slow['id']}")[2]["status"] == "running",
            what="the slow job to start",
        )
        daemon.send_signal(signal.SIGTERM)
        wait_until(lambda: call("GET", f"{base}/readyz")[0] == 503, what="readyz to say draining")
        status, headers, problem = call("POST", f"{base}/api/v1/jobs", {"type": "noop"})
        assert (status, problem["code"]) == (503, "draining") and headers["retry-after"] == "1"
        # Reads still work while the workers drain, and the slow job is still running.
        status, _, job = call("GET", f"{base}/api/v1/jobs/{slow['id']}")
        assert (status, job["status"]) == (200, "running")
        code = daemon.wait(timeout=60)
    finally:
        stop(daemon)
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output
    assert stored_payloads(db) == {int(slow["id"]): {"seconds": 3}}
    with closing(sqlite3.connect(db)) as connection:
        (status_now,) = connection.execute("SELECT status FROM jobs").fetchone()
    assert status_now == "completed"
