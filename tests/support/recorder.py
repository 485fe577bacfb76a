"""A handler app for tests: every execution appends start and end lines to a record file.

Set DURABLEQ_TEST_RECORD to the file. Lines are small single writes with O_APPEND, so lines from
several daemon processes never interleave; tests use them to count executions and to prove that no
two executions of one job overlapped.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from durableq import JobContext, Registry

registry = Registry()


def _append(event: str, ctx: JobContext, **extra: Any) -> None:
    path = os.environ.get("DURABLEQ_TEST_RECORD")
    if not path:
        return
    line = json.dumps(
        {
            "event": event,
            "job": ctx.job_id,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "t": time.time(),
            **extra,
        }
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@registry.handler("record")
def record(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Records start/end; sleeps payload["seconds"] (cooperatively) in between."""
    _append("start", ctx)
    seconds = float(payload.get("seconds", 0))
    if seconds and ctx.cancelled.wait(seconds):
        _append("stopped", ctx)
        ctx.raise_if_cancelled()
    _append("end", ctx)
    return {"job": ctx.job_id, "pid": os.getpid()}


@registry.handler("stubborn")
def stubborn(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Ignores ctx.cancelled: sleeps the full payload["seconds"]."""
    _append("start", ctx)
    time.sleep(float(payload.get("seconds", 1)))
    _append("end", ctx)


@registry.handler("crash")
def crash(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A poison pill: kills its own worker process with SIGKILL."""
    _append("start", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@registry.handler("flaky")
def flaky(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
    """Fails until attempt payload["succeed_on"], then succeeds."""
    _append("start", ctx)
    if ctx.attempt < int(payload.get("succeed_on", 2)):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    _append("end", ctx)
    return {"attempt": ctx.attempt}


@registry.handler("unserialisable")
def unserialisable(ctx: JobContext, payload: dict[str, Any]) -> object:
    return {"value": object()}


@registry.handler("async_sleep")
async def async_sleep(ctx: JobContext, payload: dict[str, Any]) -> dict[str, float]:
    import asyncio

    _append("start", ctx)
    await asyncio.sleep(float(payload.get("seconds", 0.1)))
    _append("end", ctx)
    return {"slept": float(payload.get("seconds", 0.1))}


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []
