"""The handler registry that user code fills, and the context a handler receives."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from durableq.core.builder import JobBuilder, check_name
from durableq.core.config import Settings
from durableq.core.errors import HandlerNotFound, InvalidInput

if TYPE_CHECKING:  # cron parsing is loaded by the first schedule, not by every CLI call
    from durableq.core.schedules import CatchUp, Schedule

Handler = Callable[["JobContext", dict[str, Any]], Any]
F = TypeVar("F", bound=Handler)


class JobCancelled(Exception):
    """Raised by `ctx.raise_if_cancelled()`; the worker then records why the job stopped."""


@dataclass
class JobContext:
    job_id: int
    type: str
    queue: str
    attempt: int
    max_attempts: int
    logger: logging.Logger
    timeout: float | None = None
    # Set when the job is canceled, when its timeout passes, or when the daemon shuts down.
    cancelled: threading.Event = field(default_factory=threading.Event)

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} was told to stop")


class Registry:
    """Maps job types to handlers: `@registry.handler("email.send")`."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._schedules: dict[str, Schedule] = {}

    def handler(self, job_type: str) -> Callable[[F], F]:
        def register(function: F) -> F:
            self.register(job_type, function)
            return function

        return register

    def register(self, job_type: str, function: Handler) -> None:
        if not callable(function):
            raise TypeError(f"the handler for {job_type!r} is not callable")
        if job_type in self._handlers and self._handlers[job_type] is not function:
            raise ValueError(f"a handler for {job_type!r} is already registered")
        self._handlers[job_type] = function

    def schedule(
        self,
        name: str,
        *,
        cron: str,
        type: str,
        payload: Mapping[str, Any] | None = None,
        queue: str = "default",
        timezone: str = "UTC",
        catch_up: CatchUp = "latest",
        max_catch_up: int = 10,
        no_overlap: bool = False,
        priority: int = 0,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> Schedule:
        """Declare a recurring job: a job of `type` at every tick of `cron` in `timezone`.

        Every daemon started with this registry fires it, exactly once per tick however many
        run. Missed ticks (all daemons down): `catch_up` "none" skips them, "latest" runs one
        for the most recent, "all" runs each (the newest `max_catch_up`, oldest first).
        `no_overlap` skips a tick while the previous job of the schedule is pending or running.
        """
        from durableq.core.schedules import Schedule

        if name in self._schedules:
            raise ValueError(f"a schedule named {name!r} is already declared")
        declared = Schedule(
            name=check_name("schedule name", name),
            cron=cron,
            type=type,
            payload=dict(payload or {}),
            queue=queue,
            timezone=timezone,
            catch_up=catch_up,
            max_catch_up=max_catch_up,
            no_overlap=no_overlap,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        # The job it makes is checked now, at import, not at its first tick.
        JobBuilder(Settings()).new_job(
            type,
            declared.payload,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        self._schedules[name] = declared
        return declared

    def schedules(self) -> list[Schedule]:
        return [self._schedules[name] for name in sorted(self._schedules)]

    def get(self, job_type: str) -> Handler | None:
        return self._handlers.get(job_type)

    def include(self, other: Registry) -> None:
        """Add another registry's handlers; a later app overrides a built-in of the same name."""
        self._handlers.update(other._handlers)
        self._schedules.update(other._schedules)

    def types(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))

    def __len__(self) -> int:
        return len(self._handlers)


def is_async(function: Handler) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - async callable objects too
    )


def load_registry(spec: str) -> Registry:
    """Import `package.module:attribute`, which must be a Registry (or make one when called)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(
            f"invalid --app {spec!r}: use MODULE:ATTRIBUTE, e.g. myapp.jobs:registry"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise HandlerNotFound(
            f"cannot import {module_name!r} for --app {spec}: {error}; check the module name "
            "and that it is importable from the current directory or PYTHONPATH"
        ) from None
    except Exception as error:  # the user's module raised while importing
        raise HandlerNotFound(
            f"importing {module_name!r} for --app {spec} failed: {type(error).__name__}: {error}"
        ) from None
    target = getattr(module, attribute, None)
    if callable(target) and not isinstance(target, Registry):
        try:
            target = target()
        except Exception as error:  # not a factory after all, or a factory that failed
            raise HandlerNotFound(
                f"--app {spec}: calling {module_name}.{attribute}() to make a Registry failed: "
                f"{type(error).__name__}: {error}"
            ) from None
    if not isinstance(target, Registry):
        raise HandlerNotFound(f"--app {spec}: {module_name}.{attribute} is not a durableq Registry")
    return target


def build_registry(apps: Mapping[str, Registry] | None = None, *, shell: bool = False) -> Registry:
    from durableq.handlers.builtins import builtin_registry

    registry = builtin_registry(shell=shell)
    for app in (apps or {}).values():
        registry.include(app)
    return registry
