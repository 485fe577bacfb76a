"""A bare claiming process for concurrency tests: `python -m tests.support.claimer DB OUT GO`.

Opens its own Client on DB, creates OUT.ready, waits for the file GO to exist (so that every
claimer starts at once), then claims in batches and completes each batch until nothing is left,
and writes the ids it claimed, in order, as a JSON array to OUT.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from durableq.client import Client, utc_now
from durableq.core.jobs import Action, JobStatus
from durableq.core.outcomes import Finish


def claim_until_empty(database: str, ready: Path, go: Path, batch: int) -> list[int]:
    claimed: list[int] = []
    with Client.open(database, create=False) as client:
        store = client.store
        worker = f"claimer-{os.getpid()}"
        ready.touch()
        while not go.exists():
            time.sleep(0.005)
        while jobs := store.claim(worker, (), batch, utc_now(), lease=300):
            claimed.extend(job.id for job in jobs)
            done = [
                Finish(job.id, job.lease_token, Action.COMPLETE, JobStatus.COMPLETED, 1, True)
                for job in jobs
            ]
            stale = store.finish(done, utc_now())
            assert stale == [], stale
    return claimed


def main() -> None:
    database, out, go, batch = sys.argv[1:5]
    ids = claim_until_empty(database, Path(out + ".ready"), Path(go), int(batch))
    Path(out).write_text(json.dumps(ids))


if __name__ == "__main__":
    main()
