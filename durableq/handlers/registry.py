"""The handler registry that user code fills, and the context a handler receives."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from durableq.core.builder import JobBuilder, check_name
from durableq.core.config import Settings
from durableq.core.errors import HandlerNotFound, InvalidInput

if TYPE_CHECKING:  # cron parsing is loaded by the first schedule, not by every CLI call
    from durableq.core.schedules import CatchUp, Schedule
    from durableq.handlers.tasks import Task

Handler = Callable[["JobContext", dict[str, Any]], Any]
F = TypeVar("F", bound=Handler)


class JobCancelled(Exception):
    """Raised by `ctx.raise_if_cancelled()`; the worker then records why the job stopped."""


class Reporter(Protocol):
    """Where a context's reports go: the worker's (worker/reporting.py) saves them."""

    def report(
        self,
        progress: float | None = None,
        message: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None: ...


class _Kept:
    """Reports of a context made by hand (a handler called directly, in a test): kept here."""

    def __init__(self) -> None:
        self.progress: float | None = None
        self.message: str | None = None
        self.meta: dict[str, Any] = {}

    def report(
        self,
        progress: float | None = None,
        message: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if progress is not None:
            self.progress, self.message = progress, message
        self.meta.update(meta or {})


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
    reporter: Reporter = field(default_factory=_Kept)

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} was told to stop")

    def report_progress(self, fraction: float, message: str | None = None) -> None:
        """How far the job has got (0 to 1) and, if you like, what it is doing: shown by
        `jobs show`, the API and the dashboard. Cheap: saved about once a second at most.
        Raises LeaseLost once this worker no longer holds the job."""
        self.reporter.report(progress=fraction, message=message)

    def update_meta(self, values: Mapping[str, Any]) -> None:
        """Merge `values` (JSON) into the job's metadata, key by key; kept after it ends."""
        self.reporter.report(meta=values)


class Registry:
    """Maps job types to handlers: `@registry.handler("email.send")`."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._schedules: dict[str, Schedule] = {}
        self.default_client: Any = None  # what tasks enqueue through when given none

    @overload
    def task(self, function: Callable[..., Any], /) -> Task: ...

    @overload
    def task(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int | None = None,
        timeout: str | float | None = None,
    ) -> Callable[[Callable[..., Any]], Task]: ...

    def task(
        self,
        function: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int | None = None,
        timeout: str | float | None = None,
    ) -> Task | Callable[[Callable[..., Any]], Task]:
        """Register a function as a task (`@registry.task` or `@registry.task(queue=...)`):
        it runs jobs of type `name` (default: `module.function`), and `.enqueue(client, ...)`
        makes them. The options are checked now, at import."""
        from durableq.handlers.tasks import Task, TaskOptions

        options = TaskOptions(
            queue=queue, priority=priority, max_attempts=max_attempts, timeout=timeout
        )

        def register(target: Callable[..., Any]) -> Task:
            job_type = name or f"{target.__module__}.{target.__qualname__}"
            if name is None and "<" in job_type:
                raise InvalidInput(
                    f"task {job_type!r} is nested or a lambda, so its default name would not be "
                    'the same in the worker: give it a name: @registry.task(name="...")'
                )
            made = Task(target, check_name("task name", job_type), options, self)
            JobBuilder(Settings()).new_job(made.name, {}, **options.as_keywords())
            self.register(made.name, made.handler())
            return made

        return register if function is None else register(function)

    def use(self, client: Any) -> None:
        """Tasks enqueue through `client` when a call passes none (`send.enqueue(to=...)`)."""
        self.default_client = client

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
