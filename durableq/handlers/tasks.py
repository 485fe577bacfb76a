"""Tasks: a handler you decorate once, then enqueue by calling a method on it (Celery's and
RQ's shape), with defaults per task and overrides per call.

    @registry.task(queue="mail", max_attempts=5, timeout="30s")
    def send_email(ctx: JobContext, to: str, subject: str = "Hello") -> None: ...

    send_email.enqueue(client, to="ada@example.com")
    send_email.options(delay="5m", priority=9).enqueue(client, to="ada@example.com")
    send_email(ctx, to="ada@example.com")        # runs it here and now (tests)

A task's function takes the context and either the payload (`(ctx, payload)`) or the payload's
fields as keyword arguments (`(ctx, **fields)`); the fields are checked against the signature
when enqueued, so a typo fails in the producer, not in the worker an hour later.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from durableq.core.durations import parse_duration
from durableq.core.errors import InvalidInput

if TYPE_CHECKING:
    from durableq.core.uniqueness import Unique
    from durableq.handlers.registry import JobContext, Registry


class Enqueuer(Protocol):
    """What a task enqueues through: a Client (or anything with its enqueue)."""

    def enqueue(
        self, type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> int: ...


class AsyncEnqueuer(Protocol):
    async def enqueue(
        self, type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> int: ...


Duration = str | float | None


@dataclass(frozen=True)
class TaskOptions:
    """The enqueue options a task sets by default; `.options(...)` overrides them per call."""

    queue: str = "default"
    priority: int = 0
    max_attempts: int | None = None
    timeout: Duration = None
    delay: Duration = None
    run_at: datetime | None = None
    idempotency_key: str | None = None
    unique: Unique | bool | None = None

    def as_keywords(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": _seconds("timeout", self.timeout),
            "delay": _seconds("delay", self.delay),
            "run_at": self.run_at,
            "idempotency_key": self.idempotency_key,
            "unique": self.unique,
        }


OPTION_NAMES = frozenset(field.name for field in fields(TaskOptions))


class Task:
    """A registered handler that can be enqueued; made by `Registry.task`."""

    def __init__(
        self,
        function: Callable[..., Any],
        name: str,
        options: TaskOptions,
        registry: Registry,
        client: Enqueuer | AsyncEnqueuer | None = None,
    ) -> None:
        self.function = function
        self.name = name
        self.defaults = options
        self.registry = registry
        self.client = client
        self.takes_payload = _takes_payload(function)
        functools.update_wrapper(self, function)

    def __call__(self, ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now (as a test would)."""
        return self.function(ctx, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"

    # -- enqueueing -----------------------------------------------------------------------

    def options(self, **overrides: Any) -> Task:
        """The same task with other enqueue options for the calls made through it."""
        unknown = sorted(set(overrides) - OPTION_NAMES)
        if unknown:
            raise InvalidInput(
                f"unknown option(s) for task {self.name!r}: {', '.join(unknown)}; "
                f"use {', '.join(sorted(OPTION_NAMES))}"
            )
        chosen = replace(self.defaults, **overrides)
        return Task(self.function, self.name, chosen, self.registry, self.client)

    def bind(self, client: Enqueuer | AsyncEnqueuer) -> Task:
        """The same task, enqueueing through `client` when none is passed."""
        return Task(self.function, self.name, self.defaults, self.registry, client)

    def enqueue(
        self,
        client: Enqueuer | None = None,
        payload: Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> int:
        """Enqueue a job of this task; returns its id (committed when this returns)."""
        chosen = self._client(client)
        job_id: int = chosen.enqueue(
            self.name, self.payload(payload, fields), **self.defaults.as_keywords()
        )
        return job_id

    async def aenqueue(
        self,
        client: AsyncEnqueuer | None = None,
        payload: Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> int:
        """`enqueue` through an AsyncClient: the event loop never waits on the database."""
        chosen = self._client(client)
        call = chosen.enqueue(
            self.name, self.payload(payload, fields), **self.defaults.as_keywords()
        )
        if not inspect.isawaitable(call):
            raise InvalidInput(f"task {self.name!r}: aenqueue needs an AsyncClient")
        result: int = await call
        return result

    def payload(
        self, payload: Mapping[str, Any] | None, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The job's payload from what a call passed, checked against the function."""
        if self.takes_payload:
            if fields:
                raise InvalidInput(
                    f"task {self.name!r} takes one payload: enqueue(client, {{...}}), "
                    f"not fields ({', '.join(sorted(fields))})"
                )
            if payload is not None and not isinstance(payload, Mapping):
                raise InvalidInput(f"task {self.name!r}: the payload must be a mapping")
            return dict(payload or {})
        if payload is not None:
            raise InvalidInput(
                f"task {self.name!r} takes its payload's fields: enqueue(client, name=value, ...)"
            )
        try:
            inspect.signature(self.function).bind(None, **fields)
        except TypeError as error:
            raise InvalidInput(f"task {self.name!r}: {error}") from None
        return dict(fields)

    def _client(self, client: Any) -> Any:
        chosen = client or self.client or self.registry.default_client
        if chosen is None:
            raise InvalidInput(
                f"task {self.name!r} has no client to enqueue with: pass one "
                f"({self.function.__name__}.enqueue(client, ...)), bind one "
                f"({self.function.__name__}.bind(client)), or call registry.use(client)"
            )
        return chosen

    # -- running --------------------------------------------------------------------------

    def handler(self) -> Callable[[JobContext, dict[str, Any]], Any]:
        """The (ctx, payload) handler the worker runs."""
        function = self.function
        if self.takes_payload:
            return function
        if inspect.iscoroutinefunction(function):

            async def run_async(ctx: JobContext, payload: dict[str, Any]) -> Any:
                return await function(ctx, **payload)

            return run_async

        def run(ctx: JobContext, payload: dict[str, Any]) -> Any:
            return function(ctx, **payload)

        return run


def _takes_payload(function: Callable[..., Any]) -> bool:
    """`(ctx, payload)`: one more positional parameter, named payload. Else `(ctx, **fields)`."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(f"cannot read the signature of task {function!r}") from None
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"task {function.__name__}: the first parameter must be the context (ctx)")
    rest = parameters[1:]
    if (
        len(rest) == 1
        and rest[0].name == "payload"
        and rest[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    ):
        return True
    positional_only = [p.name for p in rest if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    if positional_only:
        raise TypeError(
            f"task {function.__name__}: fields are passed by name; "
            f"{', '.join(positional_only)} cannot be"
        )
    return False


def _seconds(what: str, value: Duration) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except InvalidInput as error:
            raise InvalidInput(f"{what}: {error}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput(f"invalid {what} {value!r}: use a duration such as '30s', or seconds")
    return float(value)
