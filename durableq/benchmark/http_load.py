"""The HTTP section's load: keep-alive clients in threads of their own process.

`python -m durableq.benchmark.http_load HOST:PORT PATH CLIENTS SECONDS BATCH` posts no-op jobs
(one per request, or BATCH per request to /jobs/batch) from CLIENTS connections until SECONDS
pass, and prints one JSON object: acknowledged jobs, elapsed seconds, latencies, refusals.
Standard library only (http.client), so the client's own cost stays small and known.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    acknowledged: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)


def post_until(host: str, port: int, path: str, body: bytes, jobs: int, deadline: float) -> Tally:
    """One client: a keep-alive connection posting `body` until the deadline."""
    tally = Tally()
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status == 201:
                tally.acknowledged += jobs
            else:
                key = str(response.status)
                tally.refusals[key] = tally.refusals.get(key, 0) + 1
    finally:
        connection.close()
    return tally


def run(
    host: str, port: int, path: str, clients: int, seconds: float, batch: int
) -> dict[str, object]:
    if batch > 1:
        body = json.dumps({"jobs": [{"type": "noop"}] * batch}).encode()
    else:
        body = json.dumps({"type": "noop"}).encode()
    tallies: list[Tally] = []
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds

    def client() -> None:
        tally = post_until(host, port, path, body, batch, deadline)
        with lock:
            tallies.append(tally)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    refusals: dict[str, int] = {}
    for tally in tallies:
        for status, count in tally.refusals.items():
            refusals[status] = refusals.get(status, 0) + count
    return {
        "acknowledged": sum(tally.acknowledged for tally in tallies),
        "seconds": elapsed,
        "latencies_ms": [value for tally in tallies for value in tally.latencies_ms],
        "refusals": refusals,
    }


def main(argv: list[str]) -> None:
    where, path, clients, seconds, batch = argv
    host, _, port = where.rpartition(":")
    figures = run(host, int(port), path, int(clients), float(seconds), int(batch))
    json.dump(figures, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
