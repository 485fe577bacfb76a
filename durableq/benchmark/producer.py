"""A producer in a process of its own: `python -m durableq.benchmark.producer --db DB ...`.

Enqueues no-op jobs one per transaction with `Client.enqueue`, either back to back or spaced by
`--interval` seconds on a fixed schedule (so a slow enqueue does not push later ones back), until
`--count` jobs or `--seconds` have passed; with `--barrier DIR`, it opens the database first,
says so with a file `ready-<pid>` in DIR and starts when a file `go` appears there, so that many
producers start together however long their imports took. Prints one JSON line:
`{"enqueued": N, "seconds": S, "started": T0, "ended": T1, "latencies_ms": [...]}`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from durableq.client import Client
from durableq.core.config import Settings


def produce(
    client: Client, count: int, interval: float, seconds: float, latencies: list[float]
) -> int:
    started = time.monotonic()
    enqueued = 0
    while enqueued < count:
        now = time.monotonic()
        if now - started >= seconds:
            break
        due = started + enqueued * interval
        if due > now:
            time.sleep(due - now)
            now = time.monotonic()
        client.enqueue("noop")
        latencies.append((time.monotonic() - now) * 1000)
        enqueued += 1
    return enqueued


def _meet(barrier: Path) -> None:
    (barrier / f"ready-{os.getpid()}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.001)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m durableq.benchmark.producer")
    parser.add_argument("--db", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between enqueues")
    parser.add_argument("--seconds", type=float, default=float("inf"), help="stop after this")
    parser.add_argument("--barrier", default=None, help="a directory to meet the others in")
    args = parser.parse_args(argv)
    # DURABLEQ_SYNCHRONOUS and the other settings come from the environment, as for the CLI.
    settings = Settings.from_env().with_database(args.db)
    latencies: list[float] = []
    with Client.open(settings, create=False) as client:
        if args.barrier is not None:
            _meet(Path(args.barrier))
        started, wall = time.monotonic(), time.time()
        enqueued = produce(client, args.count, args.interval, args.seconds, latencies)
        elapsed = time.monotonic() - started
    result = {
        "enqueued": enqueued,
        "seconds": elapsed,
        "started": wall,
        "ended": wall + elapsed,
        "latencies_ms": [round(value, 3) for value in latencies],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
