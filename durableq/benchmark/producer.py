"""A producer in a process of its own: `python -m durableq.benchmark.producer --db DB ...`.

Enqueues no-op jobs one per transaction with `Client.enqueue`, either back to back or spaced by
`--interval` seconds on a fixed schedule (so a slow enqueue does not push later ones back), until
`--count` jobs or `--seconds` have passed. Prints `{"enqueued": N, "seconds": S}`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from durableq.client import Client
from durableq.core.config import Settings


def produce(client: Client, count: int, interval: float, seconds: float) -> int:
    started = time.monotonic()
    enqueued = 0
    while enqueued < count:
        now = time.monotonic()
        if now - started >= seconds:
            break
        due = started + enqueued * interval
        if due > now:
            time.sleep(due - now)
        client.enqueue("noop")
        enqueued += 1
    return enqueued


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m durableq.benchmark.producer")
    parser.add_argument("--db", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between enqueues")
    parser.add_argument("--seconds", type=float, default=float("inf"), help="stop after this")
    args = parser.parse_args(argv)
    # DURABLEQ_SYNCHRONOUS and the other settings come from the environment, as for the CLI.
    settings = Settings.from_env().with_database(args.db)
    with Client.open(settings, create=False) as client:
        started = time.monotonic()
        enqueued = produce(client, args.count, args.interval, args.seconds)
        elapsed = time.monotonic() - started
    print(json.dumps({"enqueued": enqueued, "seconds": elapsed}))


if __name__ == "__main__":
    main()
