"""Tasks: decorate a function, enqueue it by name-free calls, run it in a worker; options per
task and per call; fields checked against the signature in the producer; a direct call runs it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from durableq import InvalidInput, JobContext, Registry
from durableq.client import Client
from durableq.core.jobs import JobStatus
from durableq.worker.daemon import Worker
from durableq.worker.dispatcher import WorkerOptions

registry = Registry()
sent: list[tuple[str, str]] = []


@registry.task(queue="mail", max_attempts=5, timeout="30s", priority=2)
def send_email(ctx: JobContext, to: str, subject: str = "Hello") -> dict[str, str]:
    sent.append((to, subject))
    return {"sent": to}


@registry.task(name="report.build")
def build_report(ctx: JobContext, payload: dict[str, Any]) -> int:
    return int(payload.get("rows", 0))


@registry.task
async def ping(ctx: JobContext, host: str) -> str:
    return f"pong from {host}"


def run_worker(client: Client) -> None:
    Worker(client, registry, WorkerOptions(concurrency=2, burst=True)).run()


def test_a_task_enqueues_with_its_defaults_and_runs_in_a_worker(client: Client) -> None:
    sent.clear()
    job_id = send_email.enqueue(client, to="ada@example.com")
    job = client.get(job_id)
    assert job.type == "tests.worker.test_tasks.send_email"
    assert (job.queue, job.max_attempts, job.timeout, job.priority) == ("mail", 5, 30.0, 2)
    assert job.payload == {"to": "ada@example.com"}
    run_worker(client)
    assert client.get(job_id).status is JobStatus.COMPLETED
    assert client.get(job_id).result == {"sent": "ada@example.com"}
    assert sent == [("ada@example.com", "Hello")]


def test_options_override_per_call_and_leave_the_task_alone(client: Client) -> None:
    before = client.clock()
    later = send_email.options(delay="5m", priority=9, queue="bulk")
    job = client.get(later.enqueue(client, to="grace@example.com", subject="Hi"))
    assert (job.queue, job.priority) == ("bulk", 9)
    assert 299 <= (job.run_at - before).total_seconds() <= 310
    plain = client.get(send_email.enqueue(client, to="x@example.com"))
    assert (plain.queue, plain.priority) == ("mail", 2)


def test_payload_tasks_take_a_mapping_and_async_tasks_run(client: Client) -> None:
    report = build_report.enqueue(client, {"rows": 12})
    pinged = ping.enqueue(client, host="db1")
    run_worker(client)
    assert client.get(report).result == 12
    assert client.get(pinged).result == "pong from db1"
    assert client.get(pinged).type == "tests.worker.test_tasks.ping"


def test_calling_a_task_runs_the_function_here() -> None:
    sent.clear()
    ctx = JobContext(1, "t", "default", 1, 1, logging.getLogger("t"))
    assert send_email(ctx, to="here@example.com") == {"sent": "here@example.com"}
    assert sent == [("here@example.com", "Hello")]
    assert send_email.__name__ == "send_email"


def test_bad_calls_fail_in_the_producer_and_write_nothing(client: Client) -> None:
    with pytest.raises(InvalidInput, match="unexpected keyword argument 'too'"):
        send_email.enqueue(client, to="a@example.com", too="typo@example.com")
    with pytest.raises(InvalidInput, match="missing a required argument: 'to'"):
        send_email.enqueue(client, subject="no one")
    with pytest.raises(InvalidInput, match="takes one payload"):
        build_report.enqueue(client, rows=3)
    with pytest.raises(InvalidInput, match="takes its payload's fields"):
        send_email.enqueue(client, {"to": "a@example.com"})
    with pytest.raises(InvalidInput, match="unknown option"):
        send_email.options(retries=3)
    with pytest.raises(InvalidInput, match="invalid duration 'soon'"):
        send_email.options(delay="soon").enqueue(client, to="a@example.com")
    with pytest.raises(InvalidInput, match="no client to enqueue with"):
        Registry().task(name="orphan")(lambda ctx, payload: None).enqueue(None, {})
    assert client.jobs() == []


def test_a_bound_or_default_client_is_used_when_none_is_passed(client: Client) -> None:
    bound = send_email.bind(client)
    assert client.get(bound.enqueue(to="bound@example.com")).payload["to"] == "bound@example.com"
    local = Registry()

    @local.task(name="local.job")
    def job(ctx: JobContext, n: int) -> int:
        return n

    local.use(client)
    assert client.get(job.enqueue(n=3)).type == "local.job"


def test_bad_declarations_fail_at_import() -> None:
    local = Registry()
    with pytest.raises(InvalidInput, match="timeout"):
        local.task(name="slow", timeout="whenever")(lambda ctx, payload: None)
    with pytest.raises(TypeError, match="fields are passed by name"):
        local.task(name="positional")(lambda ctx, a, /, b: None)
    with pytest.raises(InvalidInput, match="invalid task name"):
        local.task(name="has space")(lambda ctx, payload: None)
    with pytest.raises(InvalidInput, match=r"give it a name: @registry\.task"):
        local.task(lambda ctx, payload: None)
    local.task(name="dup")(lambda ctx, payload: None)
    with pytest.raises(ValueError, match="already registered"):
        local.task(name="dup")(lambda ctx, payload: 1)
