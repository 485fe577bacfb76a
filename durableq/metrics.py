"""Prometheus metrics with prometheus-client: what this process did, and what the database holds.

Counters and histograms are this process's own (a worker's executions, fed by its event hook;
an API server's submissions): Prometheus sums them across instances. Gauges are read from the
database, which every process sees whole, at most once a second however often it is scraped
(less often on a huge table: see durableq.snapshots).

Label values come from users (queue names, job types): each is capped at MAX_LABEL_VALUES
distinct values per process, and the rest are reported as "other", so a producer that invents a
type per job cannot blow up the series count.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from durableq.client import Client
from durableq.core.builder import utc_now
from durableq.core.jobs import Action, JobStatus, NewJob
from durableq.core.uniqueness import Enqueued
from durableq.snapshots import Snapshot
from durableq.worker.events import Event, JobFinished, JobStarted

log = logging.getLogger("durableq.metrics")
# Each counter would also get a `_created` series (when it started): noise for a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_LABEL_VALUES = 100
OTHER = "other"
CACHE_SECONDS = 1.0
READ_SHARE = 10  # a read that took t seconds is kept READ_SHARE * t (at least CACHE_SECONDS)
CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = {
    Action.COMPLETE: "completed",
    Action.RETRY_LATER: "retried",
    Action.FAIL: "failed",
    Action.ACKNOWLEDGE_CANCEL: "canceled",
    Action.RELEASE: "released",  # given back at shutdown, to run again
    Action.SNOOZE: "snoozed",  # the handler said "not now"
}
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class LabelCap:
    """The first `limit` distinct values pass; later new ones become "other"."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


class Metrics:
    """One per process: a registry of its own (not the library's global one)."""

    def __init__(self, client: Client | None, clock: Callable[[], datetime] = utc_now) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.queue_label, self.type_label = LabelCap(), LabelCap()
        self.enqueued = Counter(
            "durableq_jobs_enqueued",
            "Jobs this process enqueued (duplicates of an existing job not counted).",
            ["queue", "type"],
            registry=self.registry,
        )
        self.finished = Counter(
            "durableq_jobs_finished",
            "Executions this process finished, by outcome "
            "(completed, retried, failed, canceled, released).",
            ["queue", "type", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "durableq_job_duration_seconds",
            "How long handlers ran in this process.",
            ["queue"],
            buckets=SECONDS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "durableq_job_wait_seconds",
            "From a job's run_at to its start in this process.",
            ["queue"],
            buckets=SECONDS,
            registry=self.registry,
        )
        if client is not None:
            self.registry.register(DatabaseCollector(client, self.queue_label))

    def observe(self, event: Event) -> None:
        """The worker's event subscriber: cheap, runs in the emitting thread."""
        if isinstance(event, JobStarted):
            job = event.job
            if job.run_at is not None:
                waited = (self.clock() - job.run_at).total_seconds()
                self.wait.labels(self.queue_label(job.queue)).observe(max(0.0, waited))
        elif isinstance(event, JobFinished) and event.outcome is not None and not event.stale:
            job = event.outcome.job
            queue = self.queue_label(job.queue)
            outcome = OUTCOMES.get(event.finish.action, event.finish.status.value)
            self.finished.labels(queue, self.type_label(job.type), outcome).inc()
            self.duration.labels(queue).observe(event.outcome.duration)

    def count_enqueued(self, jobs: Sequence[NewJob], enqueued: Enqueued) -> None:
        """One increment per (queue, type), not per job: a batch is usually of one kind."""
        kinds = collections.Counter(
            (job.queue, job.type)
            for position, job in enumerate(jobs)
            if position not in enqueued.duplicates
        )
        for (queue, job_type), n in kinds.items():
            self.enqueued.labels(self.queue_label(queue), self.type_label(job_type)).inc(n)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (served with CONTENT_TYPE)."""
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, from a Snapshot: at most once per
    CACHE_SECONDS, and less often when the read is slow (see durableq.snapshots)."""

    def __init__(self, client: Client, queue_label: LabelCap) -> None:
        self._client = client
        self._queue_label = queue_label
        self._snapshot = Snapshot(self._read, fresh=CACHE_SECONDS, share=READ_SHARE)

    def collect(self) -> Iterator[Metric]:
        yield from self._snapshot.get()

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("durableq_database_up", "1 if the last read of the database worked.")
        try:
            stats = self._client.stats()
            queues = self._client.queues()
            workers = self._client.workers()
        except Exception as error:  # a scrape must not fail because the database is away
            log.warning("metrics: reading the database failed: %s", error)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        jobs = GaugeMetricFamily(
            "durableq_jobs", "Jobs in the database by queue and status.", labels=["queue", "status"]
        )
        counts: dict[tuple[str, str], int] = {}
        for queue, by_status in stats.counts.items():
            for status in JobStatus:
                key = (self._queue_label(queue), status.value)
                counts[key] = counts.get(key, 0) + by_status.get(status.value, 0)
        for (queue, status_name), n in sorted(counts.items()):
            jobs.add_metric([queue, status_name], n)
        oldest = GaugeMetricFamily(
            "durableq_queue_oldest_due_seconds",
            "How long the oldest due pending job of each queue has waited (0: none).",
            labels=["queue"],
        )
        waits: dict[str, float] = {}
        for info in queues:
            queue = self._queue_label(info.name)
            waits[queue] = max(waits.get(queue, 0.0), info.oldest_due_wait or 0.0)
        for queue, waited in sorted(waits.items()):
            oldest.add_metric([queue], waited)
        live = GaugeMetricFamily("durableq_workers", "Live worker daemons (recent heartbeat).")
        live.add_metric([], len(workers))
        return [up, jobs, oldest, live]
