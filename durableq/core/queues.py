"""Queue controls, the domain side: limits, rates, and how a claim shares its slots among queues.

Pure: the stores read the `queues` rows and the running counts inside the claim's transaction,
ask `plan_claim` how many jobs each queue may start, run the claims, and write back the rate
limiter's new state, all in that one transaction.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from durableq.core.durations import format_duration, parse_duration
from durableq.core.errors import InvalidInput
from durableq.core.jobs import ClaimedJob

# The names enqueue accepts (builder.py checks the same pattern).
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:/\-]{1,200}$")


def parse_queue_name(text: str) -> str:
    if not QUEUE_NAME.match(text):
        raise InvalidInput(f"invalid queue {text!r}: use 1-200 letters, digits or . _ - : /")
    return text


@dataclass(frozen=True)
class Rate:
    """`count` jobs started per `period` seconds, at most `burst` at once (GCRA)."""

    count: int
    period: float
    burst: int

    @property
    def interval(self) -> float:
        """The time one start costs: the bucket refills one start per interval."""
        return self.period / self.count

    def allowance(self, tat: float | None, now: float) -> int:
        """How many starts the limiter allows at `now`, given its theoretical arrival time."""
        # The bucket holds `burst` starts; the time `tat` lies ahead of `now` is spent ones.
        # (Differences, not sums: Unix seconds leave too few bits for 0.2 s + now - now.)
        room = self.burst - self._ahead(tat, now) / self.interval
        return max(0, min(self.burst, math.floor(room + 1e-6)))

    def advance(self, tat: float | None, now: float, taken: int) -> float:
        """The theoretical arrival time after `taken` starts at `now`."""
        return now + self._ahead(tat, now) + taken * self.interval

    def wait(self, tat: float | None, now: float) -> float:
        """Seconds until the next start is allowed (0 when one is allowed now)."""
        if self.allowance(tat, now) > 0:
            return 0.0
        return max(0.0, self._ahead(tat, now) - (self.burst - 1) * self.interval)

    @staticmethod
    def _ahead(tat: float | None, now: float) -> float:
        return 0.0 if tat is None else max(0.0, tat - now)

    @classmethod
    def from_columns(
        cls, count: int | None, period: float | None, burst: int | None
    ) -> Rate | None:
        """The rate a `queues` row stores (rate_count, rate_period, rate_burst), if any."""
        if count is None or period is None:
            return None
        return cls(count, period, burst or count)

    def __str__(self) -> str:
        period = int(self.period) if self.period.is_integer() else self.period
        return f"{self.count}/{format_duration(period)}:{self.burst}"


_RATE = re.compile(r"^\s*(\d+)\s*/\s*([^:]+?)\s*(?::\s*(\d+)\s*)?$")


def parse_rate(text: str) -> Rate:
    """`N/DURATION[:BURST]`, e.g. `5/1s`, `100/1m:20`; the burst defaults to N."""
    match = _RATE.match(text)
    hint = "use N/DURATION[:BURST], for example 5/1s or 100/1m:20"
    if match is None:
        raise InvalidInput(f"invalid rate {text!r}: {hint}")
    count = int(match.group(1))
    try:
        period = parse_duration(match.group(2))
    except InvalidInput:
        raise InvalidInput(f"invalid rate {text!r}: {hint}") from None
    burst = int(match.group(3)) if match.group(3) is not None else count
    if count < 1 or burst < 1 or period <= 0:
        raise InvalidInput(
            f"invalid rate {text!r}: the count, the period and the burst must be positive"
        )
    if count > 1_000_000 or burst > 1_000_000:
        raise InvalidInput(f"invalid rate {text!r}: at most 1000000 per period and burst")
    return Rate(count, period, burst)


# A queue's limits are stored as 32-bit integers (PostgreSQL's INTEGER): past this, "no limit".
MAX_LIMIT = 2**31 - 1


def parse_limit(text: str, what: str) -> int | None:
    """A positive count, or `none` for no limit."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"invalid {what} {text!r}: give a positive number or none") from None
    if value < 1:
        raise InvalidInput(f"invalid {what} {text!r}: give a positive number or none")
    return check_limit(value, what)


def check_limit(value: int | None, what: str) -> int | None:
    """A queue limit as given to the library or the API: None, or 1 to MAX_LIMIT."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"invalid {what} {value!r}: give a positive number or none")
    if value > MAX_LIMIT:
        raise InvalidInput(f"invalid {what} {value}: at most {MAX_LIMIT}; for no limit give none")
    return value


def parse_worker_queue(text: str) -> tuple[str, int | None]:
    """`worker start --queue`: `mail` (no per-daemon limit) or `mail=4`."""
    name, sep, limit = text.partition("=")
    name = parse_queue_name(name.strip())
    if not sep:
        return name, None
    try:
        value = int(limit)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInput(
            f"invalid --queue {text!r}: give NAME or NAME=N with N a positive number"
        )
    return name, value


@dataclass(frozen=True)
class QueueControls:
    """A `queues` row's controls, as the claim reads them."""

    name: str
    paused: bool = False
    concurrency: int | None = None
    rate: Rate | None = None
    rate_tat: float | None = None


@dataclass(frozen=True)
class QueueInfo:
    """What `durableq queues` shows for one queue (a row, its counts, its oldest due job)."""

    name: str
    paused_at: datetime | None
    concurrency: int | None
    max_pending: int | None
    rate: Rate | None
    pending: int
    running: int
    oldest_due_wait: float | None  # seconds the oldest due pending job has waited

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


def named(found: Sequence[QueueInfo], name: str) -> QueueInfo:
    """The queue `name` among `found`; a queue exists as soon as it is named, so one with no
    row and no job is an empty one."""
    for queue in found:
        if queue.name == name:
            return queue
    return QueueInfo(name, None, None, None, None, pending=0, running=0, oldest_due_wait=None)


@dataclass
class ClaimPlan:
    """How many jobs a claim may take from each capped queue, then from the rest."""

    capped: list[tuple[str, int]] = field(default_factory=list)
    # The uncapped rest: the daemon's listened queues minus the capped ones (`only`), or every
    # queue but `excluded` when the daemon listens to all.
    only: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()
    rest: bool = True
    rated: dict[str, Rate] = field(default_factory=dict)
    wake_in: float | None = None  # a rate limit frees a start this many seconds from now
    # Queues whose share a concurrency limit (global or this daemon's) bounds, and that share.
    by_concurrency: dict[str, int] = field(default_factory=dict)

    def held(self, taken: Mapping[str, int]) -> bool:
        """True when a concurrency limit, not a lack of due jobs, ended a queue's take: a job
        of that queue finishing may let the next claim start more."""
        return any(taken.get(name, 0) >= share for name, share in self.by_concurrency.items())


def plan_claim(
    controls: Sequence[QueueControls],
    running: Mapping[str, int],
    listened: Sequence[str],
    local_caps: Mapping[str, int],
    now: float,
    rng: random.Random | None = None,
) -> ClaimPlan:
    """Share a claim among queues.

    `controls` are the controlled queues' rows, `running` their running jobs across all
    daemons, `listened` the daemon's queues (empty: all), `local_caps` what this daemon may
    still start per queue by its own `--queue NAME=N`. Capped queues come first, in a random
    order (so none starves another); their takes are bounded, so the rest still gets slots.
    """
    plan = ClaimPlan()
    by_name = {c.name: c for c in controls if not listened or c.name in listened}
    capped: dict[str, int] = {}
    for name, control in by_name.items():
        allow = math.inf
        if control.paused:
            allow = 0
        if control.concurrency is not None:
            allow = min(allow, max(0, control.concurrency - running.get(name, 0)))
            plan.by_concurrency[name] = 0  # the share, filled in below
        if control.rate is not None:
            tokens = control.rate.allowance(control.rate_tat, now)
            if tokens == 0 and allow > 0:
                wait = control.rate.wait(control.rate_tat, now)
                plan.wake_in = wait if plan.wake_in is None else min(plan.wake_in, wait)
            allow = min(allow, tokens)
            plan.rated[name] = control.rate
        if allow != math.inf:
            capped[name] = int(allow)
    for name, cap in local_caps.items():
        capped[name] = min(capped.get(name, cap), max(0, cap))
        plan.by_concurrency[name] = 0
    for name in plan.by_concurrency:
        plan.by_concurrency[name] = capped[name]
    names = sorted(capped)
    (rng or random).shuffle(names)
    plan.capped = [(name, capped[name]) for name in names if capped[name] > 0]
    if listened:
        rest = tuple(q for q in listened if q not in capped)
        plan.only, plan.rest = rest, bool(rest)
    else:
        plan.excluded = tuple(sorted(capped))
    return plan


QueueFilter = Literal["all", "in", "not in"]


class ClaimSteps(Protocol):
    """What a store does for `claim_within_controls`, inside its claim's transaction."""

    def controls(self) -> list[QueueControls]:
        """The limited queues' rows (paused, concurrency or rate set)."""
        ...

    def running(self, queues: Sequence[str]) -> dict[str, int]:
        """Running jobs per queue, across all daemons."""
        ...

    def take(self, limit: int, where: QueueFilter, queues: Sequence[str]) -> list[ClaimedJob]:
        """One claim statement: up to `limit` due jobs of all queues, of `queues`, or of all
        but `queues`."""
        ...

    def set_tat(self, queue: str, tat: float) -> None: ...


def claim_within_controls(
    steps: ClaimSteps,
    listened: Sequence[str],
    caps: Mapping[str, int],
    limit: int,
    now: float,
) -> tuple[list[ClaimedJob], float | None, bool]:
    """The claim every store runs: the jobs, when a rate limit next frees a start (seconds; None
    if none held a queue back), and whether a concurrency limit held the claim back."""
    if limit <= 0:
        return [], None, False
    controls = steps.controls()
    if not controls and not caps:  # the common case: one statement, as before queues
        return steps.take(limit, "in" if listened else "all", listened), None, False
    running = steps.running([c.name for c in controls if c.concurrency is not None])
    plan = plan_claim(controls, running, listened, caps, now)
    tats = {c.name: c.rate_tat for c in controls}
    claimed: list[ClaimedJob] = []
    taken: dict[str, int] = {}
    for name, allowed in plan.capped:
        wanted = min(allowed, limit - len(claimed))
        if wanted <= 0:
            break
        got = steps.take(wanted, "in", (name,))
        rate = plan.rated.get(name)
        if rate is not None and got:
            steps.set_tat(name, rate.advance(tats[name], now, len(got)))
        claimed += got
        taken[name] = len(got)
    rest = limit - len(claimed)
    if rest > 0 and plan.rest:
        if plan.only is not None:
            claimed += steps.take(rest, "in", plan.only)
        else:
            claimed += steps.take(rest, "not in" if plan.excluded else "all", plan.excluded)
    return claimed, plan.wake_in, plan.held(taken)


def format_rate(rate: Rate | None) -> str:
    return "-" if rate is None else str(rate)
