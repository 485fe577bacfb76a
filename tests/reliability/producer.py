"""A producer the battery kills with SIGKILL: `python -m tests.reliability.producer DB TAG MODE`.

It enqueues forever and prints `ID TAG SEQ` only after enqueue returned, flushing each line, so
every complete line on its stdout is an acknowledged job. MODE is `single` (one enqueue per job)
or `batch` (enqueue_many of a few jobs, then one line per id).
"""

from __future__ import annotations

import sys

from durableq.client import Client

BATCH = 7


def main(db: str, tag: str, mode: str) -> None:
    with Client.open(db) as client:
        seq = 0
        while True:
            size = BATCH if mode == "batch" else 1
            payloads = [{"tag": tag, "seq": seq + i} for i in range(size)]
            if mode == "batch":
                ids = client.enqueue_many({"type": "record", "payload": p} for p in payloads)
            else:
                ids = [client.enqueue("record", payloads[0])]
            lines = "".join(
                f"{i} {p['tag']} {p['seq']}\n" for i, p in zip(ids, payloads, strict=True)
            )
            sys.stdout.write(lines)
            sys.stdout.flush()
            seq += size


if __name__ == "__main__":
    main(*sys.argv[1:4])
