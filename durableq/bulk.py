"""Acting on many jobs at once, for the API's bulk routes and the dashboard's "all matching":
by id, or on every job a filter matches, read newest first in bounded pages so that neither a
huge selection nor a huge table is ever loaded whole."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from durableq.client import Client
from durableq.core.errors import DurableqError

PAGE = 500


@dataclass
class BulkResult:
    done: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)  # why jobs were skipped, the first few
    stopped: bool = False  # the cap was reached: more jobs matched


def matching_ids(
    client: Client,
    *,
    statuses: Sequence[str] = (),
    queues: Sequence[str] = (),
    types: Sequence[str] = (),
    payload_contains: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Iterator[int]:
    """Every matching job's id, newest first, read PAGE at a time (keyset, so jobs that an
    action changes or deletes do not shift the pages)."""
    before: int | None = None
    while True:
        page = client.jobs(
            statuses=statuses,
            queues=queues,
            types=types,
            payload_contains=payload_contains,
            created_after=created_after,
            created_before=created_before,
            limit=PAGE,
            before_id=before,
        )
        yield from (job.id for job in page)
        if len(page) < PAGE:
            return
        before = page[-1].id


def act_on_each(
    ids: Iterable[int],
    act: Callable[[int], object],
    *,
    cap: int | None = None,
    max_reasons: int = 20,
) -> BulkResult:
    """`act` on each id; a job the action does not apply to is skipped and counted."""
    result = BulkResult()
    for count, job_id in enumerate(ids):
        if cap is not None and count >= cap:
            result.stopped = True
            break
        try:
            act(job_id)
            result.done += 1
        except DurableqError as error:
            result.skipped += 1
            if len(result.reasons) < max_reasons:
                result.reasons.append(str(error))
    return result
