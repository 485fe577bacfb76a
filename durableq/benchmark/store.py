"""The store alone: claim then complete through the `Store`, no daemon, no threads.

Separates the store's own cost from the daemon's (threads, hand-offs, logging): the same jobs
are claimed in batches of 1 and of 50, each claim and each completion its own transaction.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from durableq.benchmark.harness import Bench
from durableq.benchmark.report import Report, rate
from durableq.benchmark.throughput import Sizes
from durableq.core.config import Settings
from durableq.core.outcomes import Outcome, OutcomeKind, resolve
from durableq.store.api import Store

BATCHES = (1, 50)


def repository(bench: Bench, sizes: Sizes, report: Report) -> None:
    for batch in BATCHES:
        db = bench.fresh(f"repository-{batch}", sizes.jobs)
        bench.progress(f"repository: claim + complete {sizes.jobs:,} jobs, batches of {batch}")
        with bench.open(db) as client:
            done, seconds = _claim_and_complete(client.store, batch, client.settings)
        figures = {"jobs": done, "seconds": seconds, "jobs_per_s": done / seconds, "batch": batch}
        report.record("repository", f"batch_{batch}", figures)
        report.row(
            "repository",
            f"Repository claim + complete, batches of {batch}",
            f"{rate(done / seconds)} ({done:,} in {seconds:.2f}s, 2 transactions a batch)",
        )


def _claim_and_complete(store: Store, batch: int, settings: Settings) -> tuple[int, float]:
    rng = random.Random(0)
    done = 0
    started = time.perf_counter()
    while claimed := store.claim("bench", (), batch, datetime.now(UTC), settings.lease):
        now = datetime.now(UTC)
        finishes = [
            resolve(Outcome(job, OutcomeKind.SUCCEEDED, 0.0), now, settings.backoff, rng)
            for job in claimed
        ]
        stale = store.finish(finishes, now)
        assert not stale, stale
        done += len(claimed)
    return done, time.perf_counter() - started
