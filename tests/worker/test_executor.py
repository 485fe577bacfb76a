"""The executor in-process: every way a handler can end becomes the right Outcome, never a raise."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from durableq.core.jobs import ClaimedJob
from durableq.core.outcomes import OutcomeKind
from durableq.handlers.registry import JobContext, Registry
from durableq.worker.executor import Execution, Executor, StopReason

registry = Registry()


@registry.handler("ok")
def ok(ctx: JobContext, payload: dict[str, Any]) -> Any:
    return {"echo": payload, "attempt": ctx.attempt}


@registry.handler("boom")
def boom(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise ValueError("boom")


@registry.handler("unserialisable")
def unserialisable(ctx: JobContext, payload: dict[str, Any]) -> Any:
    return {"when": object()}


@registry.handler("exits")
def exits(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise SystemExit(3)


@registry.handler("waits")
def waits(ctx: JobContext, payload: dict[str, Any]) -> str:
    ctx.cancelled.wait(10)
    return "stopped"


@registry.handler("async.ok")
async def async_ok(ctx: JobContext, payload: dict[str, Any]) -> int:
    await asyncio.sleep(0.01)
    return 42


@registry.handler("async.waits")
async def async_waits(ctx: JobContext, payload: dict[str, Any]) -> None:
    await asyncio.sleep(10)


def execution(job_type: str, payload: dict[str, Any] | None = None, **fields: Any) -> Execution:
    job = ClaimedJob(
        id=7,
        queue="default",
        type=job_type,
        payload=payload or {},
        attempt=2,
        max_attempts=3,
        timeout=fields.get("timeout"),
        lease_token="token",
    )
    return Execution(job)


def run_stopped_after(run: Execution, reason: StopReason, delay: float = 0.05) -> Any:
    timer = threading.Timer(delay, run.stop, args=(reason,))
    timer.start()
    try:
        return Executor(registry).run(run)
    finally:
        timer.cancel()


def test_a_return_value_is_the_result() -> None:
    outcome = Executor(registry).run(execution("ok", {"a": 1}))
    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert outcome.result_json == '{"echo":{"a":1},"attempt":2}'
    assert outcome.error is None


def test_an_exception_is_an_error_with_its_traceback() -> None:
    outcome = Executor(registry).run(execution("boom"))
    assert outcome.kind is OutcomeKind.RAISED
    assert outcome.error == "ValueError: boom"
    assert (
        outcome.traceback is not None
        and 'in boom\n    raise ValueError("boom")' in outcome.traceback
    )


def test_system_exit_in_a_handler_does_not_escape() -> None:
    outcome = Executor(registry).run(execution("exits"))
    assert (outcome.kind, outcome.error) == (OutcomeKind.RAISED, "SystemExit: 3")


def test_an_unknown_type_says_how_to_register_it() -> None:
    outcome = Executor(registry).run(execution("nobody.handles.this"))
    assert outcome.kind is OutcomeKind.RAISED
    assert outcome.error is not None
    assert "@registry.handler('nobody.handles.this')" in outcome.error


def test_a_result_that_is_not_json_fails_the_attempt() -> None:
    outcome = Executor(registry).run(execution("unserialisable"))
    assert outcome.kind is OutcomeKind.RAISED
    assert outcome.error is not None and "not JSON-serialisable" in outcome.error


def test_a_cancel_outranks_what_the_handler_returned() -> None:
    outcome = run_stopped_after(execution("waits"), StopReason.CANCELED)
    assert (outcome.kind, outcome.error, outcome.traceback) == (OutcomeKind.CANCELED, None, None)


def test_a_shutdown_gives_the_job_back() -> None:
    outcome = run_stopped_after(execution("waits"), StopReason.SHUTDOWN)
    assert outcome.kind is OutcomeKind.INTERRUPTED


def test_a_timeout_says_after_how_long() -> None:
    outcome = run_stopped_after(execution("waits", timeout=0.05), StopReason.TIMED_OUT)
    assert (outcome.kind, outcome.error) == (OutcomeKind.TIMED_OUT, "timed out after 0.05s")


def test_a_lapsed_lease_never_starts_the_handler() -> None:
    run = execution("ok")
    run.lease_until(time.monotonic() - 1)
    outcome = Executor(registry).run(run)
    assert (outcome.kind, outcome.duration) == (OutcomeKind.INTERRUPTED, 0.0)


def test_async_handlers_run_on_the_executors_loop() -> None:
    assert Executor(registry).run(execution("async.ok")).result_json == "42"


def test_an_async_handler_is_really_cancelled() -> None:
    started = time.monotonic()
    outcome = run_stopped_after(execution("async.waits"), StopReason.CANCELED)
    assert outcome.kind is OutcomeKind.CANCELED
    assert time.monotonic() - started < 1  # not the 10 s the coroutine would have slept
