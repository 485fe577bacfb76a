"""Under sustained load the -wal file stays bounded: checkpoints keep up with the writers.

Two daemons process a stream of jobs that a producer keeps topping up, while a sampler thread
records the size of the -wal file every few milliseconds. SQLite checkpoints into the main file
every ~1000 pages and then reuses the WAL from its start, unless a reader pins an old snapshot
(a long read transaction) or the checkpoint never gets the chance to run: then the WAL grows
without limit. The largest size seen must stay under a few times the checkpoint threshold.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import (
    TEST_TIMEOUT,
    Figures,
    count,
    fleet,
    integrity,
    problem_lines,
    scalar,
    sized,
    wait_all,
    wait_registered,
)

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

BATCH = 500
BACKLOG = 3000  # pending jobs the producer keeps in front of the daemons
CHECKPOINT_PAGES = 1000  # SQLite's default wal_autocheckpoint
BOUND_FACTOR = 4  # allowed WAL size, in checkpoint thresholds


class Sampler:
    """The largest size a file reached, sampled on a thread until stopped."""

    def __init__(self, path: Path, interval: float = 0.005) -> None:
        self.path = path
        self.interval = interval
        self.largest = 0
        self.samples = 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            with suppress(FileNotFoundError):  # not created yet
                self.largest = max(self.largest, os.stat(self.path).st_size)
            self.samples += 1

    @contextmanager
    def sampling(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self.run, name="wal-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def test_wal_stays_bounded_under_sustained_load(
    db_path: Path, tmp_path: Path, figures: Callable[[str], Figures]
) -> None:
    total = sized(20000, 100000, "DURABLEQ_SOAK_WAL_JOBS")
    report = figures("WAL under sustained load")
    client = Client.open(str(db_path))
    page_size = int(scalar(db_path, "PRAGMA page_size"))
    bound = BOUND_FACTOR * CHECKPOINT_PAGES * page_size
    sampler = Sampler(Path(f"{db_path}-wal"))
    args = ("--concurrency", "4", "--log-level", "warning")
    with fleet(db_path, tmp_path, *args) as daemons, sampler.sampling():
        for _ in range(2):
            daemons.start()
        wait_registered(db_path, 2)
        began = time.monotonic()
        enqueued = 0
        while enqueued < total:
            daemons.assert_none_died()
            if count(db_path, "pending") < BACKLOG:
                size = min(BATCH, total - enqueued)
                enqueued += len(client.enqueue_many([{"type": "record"}] * size))
            else:
                time.sleep(0.02)
        client.close()
        wait_all(db_path, "completed", total, timeout=120 + total / 20, fleet=daemons)
        elapsed = time.monotonic() - began
        codes = daemons.stop_all()

    report["jobs"], report["seconds"] = total, elapsed
    report["max_wal_bytes"], report["bound_bytes"] = sampler.largest, bound
    report["samples"] = sampler.samples
    assert sampler.samples > 100, "the sampler hardly ran"
    assert 0 < sampler.largest < bound, f"the WAL grew to {sampler.largest} bytes"
    assert codes == {d.pid: 0 for d in daemons.daemons}
    assert not (bad := problem_lines(daemons.combined_logs())), bad[:20]
    assert integrity(db_path) == "ok"
