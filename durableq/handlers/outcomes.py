"""What a handler can tell the queue by raising: not now, give up, retry later, stop.

    raise Snooze("10m")        # back to pending in 10 minutes; the attempt does not count
    raise RetryIn("30s")       # a failed attempt, retried after 30 s instead of the backoff
    raise Fail("bad address", retry=False)   # failed for good, now
    raise Cancel("user deleted")             # canceled, never retried

Delays are durations ("10m", "1h30m") or seconds (0.5). Each becomes one fenced write of the
job's outcome, like any other; a bad delay is the handler's bug and fails the attempt with a
message that says so.
"""

from __future__ import annotations

from durableq.core.durations import parse_duration
from durableq.core.errors import InvalidInput


def _seconds(delay: str | float) -> float:
    if isinstance(delay, bool) or not isinstance(delay, str | int | float):
        raise InvalidInput(f"invalid delay {delay!r}: use a duration such as '10m', or seconds")
    if isinstance(delay, str):
        return parse_duration(delay)
    if not 0 <= delay < float("inf"):
        raise InvalidInput(f"invalid delay {delay!r}: use a duration such as '10m', or seconds")
    return float(delay)


class HandlerOutcome(Exception):  # not an error: an instruction to the worker
    """Raised by a handler to end its attempt in a chosen way."""


class Snooze(HandlerOutcome):
    """Not now: back to pending after `delay`, the attempt not counted (the job's metadata
    counts the snoozes), the backoff untouched."""

    def __init__(self, delay: str | float) -> None:
        self.seconds = _seconds(delay)
        super().__init__(f"snoozed for {self.seconds:g}s")


class RetryIn(HandlerOutcome):
    """A failed attempt (it counts) retried after `delay` instead of the backoff; failed for
    good if it was the last attempt."""

    def __init__(self, delay: str | float, reason: str = "") -> None:
        self.seconds = _seconds(delay)
        self.reason = reason
        text = f"retry in {self.seconds:g}s requested by the handler"
        super().__init__(f"{text}: {reason}" if reason else text)


class Fail(HandlerOutcome):
    """A failed attempt with `reason` as its error (no traceback). `retry=False`: failed for
    good now, whatever attempts are left; otherwise retried after the backoff as usual."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        self.reason = reason
        self.retry = retry
        super().__init__(reason)


class Cancel(HandlerOutcome):
    """Give up without failing: the job ends canceled, not retried; `reason` is kept in its
    metadata (`cancel_reason`)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason or "canceled by the handler")


class LeaseLost(Exception):  # the name users know from other queues
    """Raised in a handler that reports progress or metadata after its worker lost the job's
    lease (another worker may be running it now): stop, nothing more will be saved."""
