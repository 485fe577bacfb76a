"""What a handler can tell the queue (Snooze, RetryIn, Fail, Cancel) and report while it runs
(progress, metadata), through a whole Worker in-process on a real SQLite file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from durableq import Cancel, Fail, LeaseLost, RetryIn, Snooze
from durableq.client import Client
from durableq.core.config import Settings, database_url
from durableq.core.jobs import JobStatus
from durableq.core.retry import Backoff
from durableq.handlers.registry import JobContext, Registry
from durableq.worker.daemon import Worker
from durableq.worker.dispatcher import WorkerOptions
from tests.support.factories import error_count


@pytest.fixture
def quick(db_path: Path) -> Iterator[Client]:
    settings = Settings(
        database=database_url(str(db_path)),
        lease=2.0,
        poll_interval=0.05,
        backoff=Backoff(base=60.0, jitter=0.0),
    )
    with Client.open(settings) as opened:
        yield opened


def work(client: Client, registry: Registry, burst: bool = True) -> Worker:
    worker = Worker(client, registry, WorkerOptions(concurrency=2, burst=burst))
    worker.run()
    return worker


def test_a_hundred_snoozes_never_fail_a_job_nor_touch_its_backoff(quick: Client) -> None:
    registry = Registry()
    runs: list[int] = []

    @registry.handler("poll")
    def poll(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.attempt)
        if len(runs) <= 100:
            raise Snooze(0)
        raise RuntimeError("upstream down")  # the first real failure, after 100 snoozes

    job_id = quick.enqueue("poll", max_attempts=3)
    before = quick.clock()
    work(quick, registry)
    job = quick.get(job_id)
    assert len(runs) == 101 and set(runs) == {1}  # every snooze gave its attempt back
    assert job.status is JobStatus.PENDING and job.attempts == 1
    assert job.meta == {"snoozes": 100}
    # The failure after the snoozes waits the first attempt's backoff (60 s), not the 101st's.
    assert 59 <= (job.run_at - before).total_seconds() <= 75
    assert error_count(quick.engine, job_id) == 1


def test_snooze_puts_the_job_back_later_without_an_error(quick: Client) -> None:
    registry = Registry()
    registry.handler("later")(lambda ctx, payload: (_ for _ in ()).throw(Snooze("10m")))
    job_id = quick.enqueue("later")
    before = quick.clock()
    work(quick, registry)
    job = quick.get(job_id)
    assert job.status is JobStatus.PENDING and job.attempts == 0 and job.last_error is None
    assert 599 <= (job.run_at - before).total_seconds() <= 610
    assert job.meta == {"snoozes": 1} and error_count(quick.engine, job_id) == 0


def test_cancel_from_the_handler_ends_canceled_with_attempts_left(quick: Client) -> None:
    registry = Registry()

    @registry.handler("sync")
    def sync(ctx: JobContext, payload: dict[str, Any]) -> None:
        ctx.update_meta({"seen": 3})
        raise Cancel("the account was deleted")

    job_id = quick.enqueue("sync", max_attempts=10)
    work(quick, registry)
    job = quick.get(job_id)
    assert job.status is JobStatus.CANCELED and job.attempts == 1
    assert job.meta == {"seen": 3, "cancel_reason": "the account was deleted"}
    assert error_count(quick.engine, job_id) == 0


def test_retry_in_counts_the_attempt_and_sets_run_at(quick: Client) -> None:
    registry = Registry()

    @registry.handler("rate.limited")
    def limited(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RetryIn("5s", "429 from the API")

    job_id = quick.enqueue("rate.limited", max_attempts=3)
    before = quick.clock()
    work(quick, registry)
    job = quick.get(job_id)
    assert job.status is JobStatus.PENDING and job.attempts == 1
    assert 4.9 <= (job.run_at - before).total_seconds() <= 6.5  # not the 60 s backoff
    assert quick.errors(job_id)[0].error == (
        "retry in 5s requested by the handler: 429 from the API"
    )


def test_retry_in_on_the_last_attempt_fails(quick: Client) -> None:
    registry = Registry()
    registry.handler("t")(lambda ctx, payload: (_ for _ in ()).throw(RetryIn(1)))
    job_id = quick.enqueue("t", max_attempts=1)
    work(quick, registry)
    assert quick.get(job_id).status is JobStatus.FAILED


def test_fail_without_retry_fails_now_and_fail_with_retry_backs_off(quick: Client) -> None:
    registry = Registry()

    @registry.handler("charge")
    def charge(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise Fail("card declined", retry=payload["retry"])

    final = quick.enqueue("charge", {"retry": False}, max_attempts=5)
    again = quick.enqueue("charge", {"retry": True}, max_attempts=5)
    work(quick, registry)
    assert quick.get(final).status is JobStatus.FAILED and quick.get(final).attempts == 1
    assert [e.error for e in quick.errors(final)] == ["Fail: card declined"]
    assert quick.errors(final)[0].traceback is None
    retried = quick.get(again)
    assert retried.status is JobStatus.PENDING and retried.last_error == "Fail: card declined"


def test_a_bad_snooze_delay_fails_the_attempt_and_says_why(quick: Client) -> None:
    registry = Registry()
    registry.handler("t")(lambda ctx, payload: (_ for _ in ()).throw(Snooze("soon")))
    job_id = quick.enqueue("t", max_attempts=1)
    work(quick, registry)
    assert "invalid duration 'soon'" in (quick.get(job_id).last_error or "")


def test_progress_reported_just_before_returning_is_kept(quick: Client) -> None:
    registry = Registry()

    @registry.handler("import")
    def run_import(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
        ctx.update_meta({"source": "s3://bucket/file.csv"})
        ctx.report_progress(0.5, "half way")
        ctx.update_meta({"rows": 1200})
        ctx.report_progress(1.0, "done")
        return {"rows": 1200}

    job_id = quick.enqueue("import")
    work(quick, registry)
    job = quick.get(job_id)
    assert job.status is JobStatus.COMPLETED and job.result == {"rows": 1200}
    assert (job.progress, job.progress_message) == (1.0, "done")
    assert job.meta == {"source": "s3://bucket/file.csv", "rows": 1200}


def test_progress_is_visible_while_the_job_runs_and_meta_survives_a_retry(quick: Client) -> None:
    registry = Registry()
    release = threading.Event()

    @registry.handler("long")
    def long_job(ctx: JobContext, payload: dict[str, Any]) -> None:
        if ctx.attempt == 1:
            ctx.update_meta({"cursor": 40})
            ctx.report_progress(0.4, "row 40 of 100")
            release.wait(10)
            raise RuntimeError("connection reset")
        ctx.report_progress(1.0)

    job_id = quick.enqueue("long", max_attempts=2)
    worker = Worker(quick, registry, WorkerOptions(concurrency=1))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while quick.get(job_id).progress is None and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = quick.get(job_id)
        assert (seen.status, seen.progress, seen.progress_message) == (
            JobStatus.RUNNING,
            0.4,
            "row 40 of 100",
        )
        assert seen.meta == {"cursor": 40}
    finally:
        release.set()
        worker.stop()
        thread.join(10)
    job = quick.get(job_id)
    assert job.meta == {"cursor": 40}  # kept through the failure, for the next attempt


def test_a_report_after_the_lease_was_lost_raises_lease_lost(quick: Client) -> None:
    registry = Registry()
    raised: list[str] = []
    started = threading.Event()

    @registry.handler("stubborn")
    def stubborn(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                ctx.report_progress(0.1)
                time.sleep(0.05)
        except LeaseLost as error:
            raised.append(str(error))

    job_id = quick.enqueue("stubborn")
    worker = Worker(quick, registry, WorkerOptions(concurrency=1))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert started.wait(5)
        with quick.engine.begin() as connection:  # as if another worker had taken the job
            connection.execute(text("UPDATE jobs SET lease_token = 'someone-else'"))
        deadline = time.monotonic() + 5
        while not raised and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(10)
    assert raised and "lost its lease" in raised[0]
    assert quick.get(job_id).status is JobStatus.RUNNING  # untouched: not this worker's any more


def test_bad_reports_fail_the_attempt_with_a_clear_message(quick: Client) -> None:
    registry = Registry()

    @registry.handler("bad")
    def bad(ctx: JobContext, payload: dict[str, Any]) -> None:
        if payload["what"] == "progress":
            ctx.report_progress(1.5)
        else:
            ctx.update_meta({"when": object()})

    first = quick.enqueue("bad", {"what": "progress"}, max_attempts=1)
    second = quick.enqueue("bad", {"what": "meta"}, max_attempts=1)
    work(quick, registry)
    assert "invalid progress 1.5: use a fraction from 0 to 1" in (quick.get(first).last_error or "")
    assert "metadata must be JSON-serialisable" in (quick.get(second).last_error or "")


def test_a_context_made_by_hand_keeps_reports_for_tests() -> None:
    import logging

    ctx = JobContext(1, "t", "default", 1, 3, logging.getLogger("t"))
    ctx.report_progress(0.25, "a quarter")
    ctx.update_meta({"k": 1})
    assert (ctx.reporter.progress, ctx.reporter.message, ctx.reporter.meta) == (  # type: ignore[attr-defined]
        0.25,
        "a quarter",
        {"k": 1},
    )
