"""The daemon's services in-process on a real SQLite file: the runner's schedule and isolation,
the heartbeat's renewals and cancels, the rescuer, and a whole Worker run without a subprocess."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durableq.client import Client
from durableq.core.builder import utc_now
from durableq.core.config import Settings, database_url
from durableq.core.errors import DatabaseError
from durableq.core.jobs import JobStatus
from durableq.handlers.registry import JobContext, Registry
from durableq.store.api import WorkerInfo
from durableq.worker.daemon import Worker
from durableq.worker.dispatcher import Dispatcher, WorkerOptions
from durableq.worker.events import Events, ServiceRan
from durableq.worker.executor import Executor
from durableq.worker.maintenance import Heartbeat, Rescuer
from durableq.worker.services.runner import ServiceRunner
from tests.support.factories import at, insert_job


class Probe:
    def __init__(self, name: str, leader_only: bool = False, fails: Exception | None = None):
        self.name = name
        self.leader_only = leader_only
        self.interval = 60.0
        self.fails = fails
        self.runs: list[datetime] = []

    def run_once(self, now: datetime) -> object:
        self.runs.append(now)
        if self.fails is not None:
            raise self.fails
        return {"ran": self.name}


def test_the_runner_isolates_a_failing_service_and_reports_the_others() -> None:
    broken = Probe("broken", fails=RuntimeError("bug"))
    offline = Probe("offline", fails=DatabaseError("gone"))
    healthy = Probe("healthy")
    ran: list[ServiceRan] = []
    events = Events()
    events.subscribe(lambda event: ran.append(event) if isinstance(event, ServiceRan) else None)
    runner = ServiceRunner("test", [broken, offline, healthy], utc_now, events=events)
    reports = runner.run_due()
    assert isinstance(reports["broken"], RuntimeError)
    assert isinstance(reports["offline"], DatabaseError)
    assert reports["healthy"] == {"ran": "healthy"}
    assert [event.name for event in ran] == ["healthy"]
    assert runner.run_due() == {}  # each waits for its own interval


def test_leader_only_services_wait_for_the_lead() -> None:
    leading = threading.Event()
    chore = Probe("chore", leader_only=True)
    runner = ServiceRunner("test", [chore], utc_now, leads=leading.is_set)
    assert runner.run_due() == {} and chore.runs == []
    leading.set()
    time.sleep(0.5)  # the runner looks again within LEADER_RECHECK, not a whole interval
    assert runner.run_due() == {"chore": {"ran": "chore"}}


def test_the_rescuer_requeues_a_dead_workers_job(client: Client) -> None:
    job_id = insert_job(client.engine, JobStatus.RUNNING, worker_id="dead", attempts=1)
    report = Rescuer(client.store, client.settings).run_once(at(3600))
    assert report.requeued == [job_id]
    job = client.get(job_id)
    assert (job.status, job.worker_id) == (JobStatus.PENDING, None)
    assert [e.error for e in client.errors(job_id)] == ["worker dead died: its lease expired"]


@pytest.fixture
def running(db_path: Path) -> Any:
    """A long-lived dispatcher with one job in its handler, and what the test needs of it.

    It polls rarely, so that between a test's steps it takes no turn (a turn renews leases
    itself) unless a commit wakes it."""
    settings = Settings(database=database_url(str(db_path)), lease=2.0, poll_interval=30.0)
    client = Client.open(settings)
    registry = Registry()
    started = threading.Event()

    @registry.handler("long")
    def long(ctx: JobContext, payload: dict[str, Any]) -> str:
        started.set()
        return "stopped" if ctx.cancelled.wait(30) else "ran out"

    job_id = client.enqueue("long", {})
    dispatcher = Dispatcher(
        client.store, Executor(registry), settings, WorkerOptions(), "w1", utc_now
    )
    now = utc_now()
    client.store.register_worker(WorkerInfo("w1", "host", 1, (), 4, now, now, settings.lease))
    thread = threading.Thread(target=dispatcher.run, args=(client.store.change_watcher(),))
    thread.start()
    assert started.wait(10)
    yield client, dispatcher, job_id
    dispatcher.request_stop()
    thread.join(10)
    client.close()


def test_the_heartbeat_renews_the_running_jobs_lease(running: Any) -> None:
    client, dispatcher, job_id = running
    before = client.get(job_id).lease_expires_at
    dispatcher.running.last_renewal = time.monotonic() - 60  # a renewal is due
    report = Heartbeat(client.store, dispatcher, client.settings, utc_now).run_once(utc_now())
    assert report.renewed == frozenset({job_id})
    assert client.get(job_id).lease_expires_at > before


def test_the_heartbeat_passes_a_cancel_on_to_the_handler(running: Any) -> None:
    client, dispatcher, job_id = running
    client.cancel(job_id)
    report = Heartbeat(client.store, dispatcher, client.settings, utc_now).run_once(utc_now())
    assert report.cancel_requested == frozenset({job_id})
    deadline = time.monotonic() + 10
    while client.get(job_id).status is JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get(job_id).status is JobStatus.CANCELED


def test_a_whole_worker_runs_in_process(db_path: Path) -> None:
    settings = Settings(database=database_url(str(db_path)), lease=2.0, poll_interval=0.05)
    registry = Registry()
    leaders: list[str | None] = []

    with Client.open(settings) as client:

        @registry.handler("look")
        def look(ctx: JobContext, payload: dict[str, Any]) -> None:
            deadline = time.monotonic() + 5
            while (leader := client.leader()) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            leaders.append(None if leader is None else leader.holder)

        ids = client.enqueue_many([{"type": "look"}] * 3)
        worker = Worker(client, registry, WorkerOptions(concurrency=1, burst=True))
        worker.run()
        assert {client.get(i).status for i in ids} == {JobStatus.COMPLETED}
        assert leaders == [worker.id] * 3  # the only daemon led while it ran
        assert client.leader() is None  # and resigned as it stopped
        assert client.workers() == []  # unregistered


def test_the_leading_worker_rolls_finished_jobs_into_the_history(db_path: Path) -> None:
    settings = Settings(database=database_url(str(db_path)), lease=2.0, poll_interval=0.05)
    registry = Registry()
    registry.handler("ok")(lambda ctx, payload: None)
    with Client.open(settings) as client:
        ids = client.enqueue_many([{"type": "ok"}] * 5)
        worker = Worker(client, registry, WorkerOptions(concurrency=2, burst=True))
        worker.run()
        assert {client.get(i).status for i in ids} == {JobStatus.COMPLETED}
        upkeep = next(r for r in worker.maintenance.runners if r.name == "upkeep")
        assert upkeep.leads == worker.maintenance.leadership.leads  # leader only
        # Minutes settle a minute and the busy timeout after they end; then they are counted.
        rollup = worker.maintenance.rollup
        later = utc_now() + timedelta(seconds=rollup.settle + 60)
        rollup.run_once(later)
        history = client.history("1h")
        assert sum(bucket.completed for bucket in history.buckets) == 5
