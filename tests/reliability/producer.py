"""A producer the battery runs (and kills with SIGKILL):
`python -m tests.reliability.producer DB TAG MODE [COUNT [SECONDS [PAUSE]]]`.

It enqueues (forever, or COUNT jobs) and prints `ID TAG SEQ` only after enqueue returned,
flushing each line, so every complete line on its stdout is an acknowledged job. MODE is `single`
(one enqueue per job), `batch` (enqueue_many of a few jobs, then one line per id) or `mixed`
(one enqueue per job, in turn to the queue `limited`, to `default`, and as a unique job of queue
`unique` whose twins are those with the same `key`, one of UNIQUE_KEYS). With
SECONDS, each `record` job sleeps a share of it (0 to SECONDS, by its sequence number); with
PAUSE, the producer sleeps that long between enqueues. An empty COUNT means forever.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from durableq import Unique
from durableq.client import Client

BATCH = 7
UNIQUE_KEYS = 4
SHARES = 5  # job n sleeps (n % SHARES) / (SHARES - 1) of SECONDS


def payload(tag: str, seq: int, seconds: float | None) -> dict[str, Any]:
    made: dict[str, Any] = {"tag": tag, "seq": seq}
    if seconds is not None:
        made["seconds"] = round(seconds * (seq % SHARES) / (SHARES - 1), 3)
    return made


def main(db: str, tag: str, mode: str, count: str = "", seconds: str = "", pause: str = "") -> None:
    limit = int(count) if count else None
    sleep = float(seconds) if seconds else None
    with Client.open(db) as client:
        for seq in itertools.count(step=BATCH if mode == "batch" else 1):
            if limit is not None and seq >= limit:
                return
            size = BATCH if mode == "batch" else 1
            if limit is not None:
                size = min(size, limit - seq)
            payloads = [payload(tag, seq + i, sleep) for i in range(size)]
            if mode == "batch":
                ids = client.enqueue_many({"type": "record", "payload": p} for p in payloads)
            elif mode == "mixed":
                ids = [_mixed(client, seq, payloads[0])]
            else:
                ids = [client.enqueue("record", payloads[0])]
            lines = "".join(
                f"{i} {p['tag']} {p['seq']}\n" for i, p in zip(ids, payloads, strict=True)
            )
            sys.stdout.write(lines)
            sys.stdout.flush()
            if pause:
                time.sleep(float(pause))


def _mixed(client: Client, seq: int, made: dict[str, Any]) -> int:
    turn = seq % 3
    if turn == 0:
        return client.enqueue("record", made, queue="limited")
    if turn == 1:
        return client.enqueue("record", made)
    keyed = {**made, "key": seq % UNIQUE_KEYS}
    return client.enqueue("record", keyed, queue="unique", unique=Unique(keys=("key",)))


if __name__ == "__main__":
    main(*sys.argv[1:7])
