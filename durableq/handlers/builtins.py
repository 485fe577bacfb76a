"""Handlers every worker has, so a daemon does something useful with no user code."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from durableq.handlers.registry import JobCancelled, JobContext, Registry

OUTPUT_LIMIT = 64 * 1024


def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def sleep(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """`{"seconds": N}`; stops early, raising JobCancelled, when told to."""
    seconds = float(payload.get("seconds", 1))
    started = time.monotonic()
    if ctx.cancelled.wait(max(0.0, seconds)):
        raise JobCancelled(f"sleep stopped after {time.monotonic() - started:.2f}s of {seconds}s")
    return {"slept": seconds}


def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Always raises: for trying retries and backoff."""
    raise RuntimeError(str(payload.get("message", "this job always fails")))


def run_shell(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """`{"argv": ["cmd", "arg", ...]}`: runs a program (no shell), killed if told to stop."""
    argv = payload.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError('the shell handler needs {"argv": ["program", "arg", ...]}')
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    while process.poll() is None:
        if ctx.cancelled.wait(0.05):
            process.kill()
            process.communicate()
            raise JobCancelled(f"{argv[0]} was killed: the job was told to stop")
    stdout, stderr = process.communicate()
    err_text = stderr[-OUTPUT_LIMIT:].decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {process.returncode}: {err_text.strip()[-500:]}")
    return {
        "returncode": process.returncode,
        "stdout": stdout[-OUTPUT_LIMIT:].decode(errors="replace"),
        "stderr": err_text,
    }


def builtin_registry(*, shell: bool = False) -> Registry:
    registry = Registry()
    for name, function in (("noop", noop), ("echo", echo), ("sleep", sleep), ("fail", fail)):
        registry.register(name, function)
    if shell:
        registry.register("shell", run_shell)
    return registry
