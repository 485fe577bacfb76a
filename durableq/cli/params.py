"""Converting what users type (durations, instants, job ids, statuses) as click callbacks.

Callbacks rather than ParamType subclasses: ParamType's generic signature changed across click
releases, and a callback reads the same in all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from durableq.core.builder import parse_job_id, parse_status
from durableq.core.durations import parse_duration, parse_instant
from durableq.core.errors import InvalidInput
from durableq.core.jobs import JobStatus
from durableq.core.queues import parse_queue_name, parse_worker_queue

T = TypeVar("T")


def _converter(parse: Callable[[str], T]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            if isinstance(value, tuple):
                return tuple(parse(str(item)) for item in value)
            return parse(str(value))
        except InvalidInput as error:
            raise click.BadParameter(str(error), ctx, param) from None

    return convert


duration = _converter(parse_duration)
instant = _converter(parse_instant)
job_id = _converter(parse_job_id)
status = _converter(parse_status)


def _parse_finished_status(text: str) -> JobStatus:
    found = parse_status(text)
    if not found.is_terminal:
        raise InvalidInput(
            f"{found.value} jobs are not finished: only completed, failed or canceled ones "
            "can be purged"
        )
    return found


finished_status = _converter(_parse_finished_status)


worker_queue = _converter(parse_worker_queue)
queue_name = _converter(parse_queue_name)
