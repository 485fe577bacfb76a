"""Recurring jobs: a schedule's definition and its ticks, in its own time zone. Pure: no I/O.

Cron expressions are parsed and stepped by cronsim (a well-kept parser; the project behind
Healthchecks.io), over the schedule's *local wall-clock* times; each local time is then placed
on the UTC timeline with zoneinfo:

- a local time that does not exist (the hour skipped when clocks spring forward) is skipped;
- a local time that happens twice (the hour repeated when clocks fall back) fires once, at its
  first occurrence.

(cronsim on aware datetimes would move a skipped time to the next valid minute, as Debian's
cron does; the local-time rule above is simpler to state and the one we promise.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from durableq.core.errors import InvalidInput

CatchUp = Literal["none", "latest", "all"]
CATCH_UP_POLICIES: tuple[CatchUp, ...] = ("none", "latest", "all")
# A tick this late is "missed" rather than "due now": `catch_up="none"` skips it.
ON_TIME = timedelta(seconds=60)
MAX_CATCH_UP = 1000
# A tick's local time, placed in UTC, may lie up to a fold (an hour, two for a few zones in
# history) away from its naive order: iterations start this far out and filter.
_FOLD_MARGIN = timedelta(hours=3)
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Schedule:
    """A recurring job, declared in code with `registry.schedule(...)`."""

    name: str
    cron: str
    type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    queue: str = "default"
    timezone: str = "UTC"
    catch_up: CatchUp = "latest"
    max_catch_up: int = 10
    no_overlap: bool = False
    priority: int = 0
    max_attempts: int | None = None
    timeout: float | None = None
    # Derived in __post_init__: the cron with aliases expanded, and the zone.
    expression: str = field(init=False, repr=False, compare=False, default="")
    zone: ZoneInfo = field(init=False, repr=False, compare=False, default=ZoneInfo("UTC"))

    def __post_init__(self) -> None:
        what = f"schedule {self.name!r}"
        if not isinstance(self.cron, str) or not self.cron.strip():
            raise InvalidInput(f"{what}: cron must be a cron expression, e.g. '0 7 * * mon-fri'")
        expression = _ALIASES.get(self.cron.strip().lower(), self.cron.strip())
        try:
            CronSim(expression, datetime(2000, 1, 1))
        except CronSimError as error:
            raise InvalidInput(
                f"{what}: invalid cron {self.cron!r} ({error}); use five fields, "
                "minute hour day month weekday, e.g. '*/15 * * * *' (or six, seconds first)"
            ) from None
        object.__setattr__(self, "expression", expression)
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidInput(
                f"{what}: unknown time zone {self.timezone!r}; use an IANA name such as "
                "Europe/Berlin or UTC"
            ) from None
        object.__setattr__(self, "zone", zone)
        if self.catch_up not in CATCH_UP_POLICIES:
            raise InvalidInput(
                f"{what}: unknown catch_up {self.catch_up!r}; use none, latest or all"
            )
        count = self.max_catch_up
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CATCH_UP:
            raise InvalidInput(f"{what}: max_catch_up must be a whole number from 1 to 1000")
        if not isinstance(self.no_overlap, bool):
            raise InvalidInput(f"{what}: no_overlap must be True or False")
        if self.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise InvalidInput(f"{what}: cron {self.cron!r} never fires")

    def next_after(self, instant: datetime) -> datetime | None:
        """The first tick strictly after `instant`, in UTC; None if the cron never fires again."""
        for tick in self._ticks(instant - _FOLD_MARGIN, reverse=False):
            if tick > instant:
                return tick
        return None

    def due(self, next_run_at: datetime, now: datetime) -> list[datetime]:
        """The ticks to fire now, oldest first, for a schedule whose next tick was
        `next_run_at`: by `catch_up`, the latest (none: only if it is on time), or the newest
        `max_catch_up` of those since then."""
        if next_run_at > now:
            return []
        wanted = self.max_catch_up if self.catch_up == "all" else 1
        ticks: list[datetime] = []
        for tick in self._ticks(now + _FOLD_MARGIN, reverse=True):
            if tick < next_run_at or len(ticks) == wanted:
                break
            if tick <= now:
                ticks.append(tick)
        if self.catch_up == "none" and ticks and now - ticks[0] > ON_TIME:
            return []
        return ticks[::-1]

    def _ticks(self, start: datetime, reverse: bool) -> Iterator[datetime]:
        """Ticks in UTC, stepping local wall-clock times from `start`'s (see the module doc)."""
        zone = self.zone
        local_start = start.astimezone(zone).replace(tzinfo=None)
        if reverse:
            local_start += timedelta(microseconds=1)  # cronsim's reverse steps are strict
        iterator = CronSim(self.expression, local_start, reverse=reverse)
        while True:
            try:
                local = next(iterator)
            except StopIteration:  # cronsim's horizon: the cron never fires again
                return
            tick = _placed(local, zone)
            if tick is not None:  # distinct local times place at distinct, ordered instants
                yield tick


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    cron: str
    description: str
    timezone: str
    type: str
    queue: str
    catch_up: str
    max_catch_up: int
    no_overlap: bool
    next_run_at: datetime | None
    last_tick: datetime | None
    last_run_at: datetime | None
    last_job_id: int | None
    last_job_status: str | None
    active: bool
    seen_at: datetime


def _placed(local: datetime, zone: ZoneInfo) -> datetime | None:
    """A naive local time in UTC: its first occurrence, or None if it does not exist."""
    aware = local.replace(tzinfo=zone, fold=0)
    placed = aware.astimezone(UTC)
    if placed.astimezone(zone).replace(tzinfo=None) != local:
        return None  # skipped by a spring-forward change
    return placed


def describe(cron: str) -> str:
    """The cron expression in words ("At 07:00 on Monday through Friday"), or itself."""
    try:
        return str(
            CronSim(_ALIASES.get(cron.strip().lower(), cron), datetime(2000, 1, 1)).explain()
        )
    except Exception:  # explain() is a nicety; an unusual expression keeps its own text
        return cron
