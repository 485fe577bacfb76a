"""Charts as server-rendered SVG: the geometry of a bar chart of a history's buckets.

The template (chart.html) draws what this computes: bars with a <title> each (the exact value
and the bucket's time, for hover and screen readers), a y axis rounded to a readable maximum,
and the window's first and last times. No JavaScript is involved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from durableq.core.history import Bucket, History

WIDTH, HEIGHT = 600, 170
LEFT, BOTTOM, TOP = 64, 26, 8  # room for the y labels, the x labels and the top label


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "09:31 UTC: 1,204 completed"


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    series: str  # a CSS class: the bars' colour (with a pattern for failures)
    bars: list[Bar]
    top_label: str  # the y axis maximum, as text
    first_label: str
    last_label: str
    summary: str  # the whole chart in words (aria-label)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM
    top: int = TOP

    @property
    def base_y(self) -> int:
        return self.height - self.bottom


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^n at or above `value` (1 for nothing at all)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def bar_chart(
    id: str,
    title: str,
    series: str,
    history: History,
    value: Callable[[Bucket], float | None],
    format_value: Callable[[float], str],
) -> Chart:
    buckets = history.buckets
    values = [value(bucket) for bucket in buckets]
    top = nice_ceiling(max((v for v in values if v is not None), default=0.0))
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    slot = plot_width / max(1, len(buckets))
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, (bucket, v) in enumerate(zip(buckets, values, strict=True)):
        if not v:
            continue
        height = max(1.0, plot_height * v / top)
        bars.append(
            Bar(
                x=round(LEFT + index * slot + gap / 2, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(slot - gap, 2),
                height=round(height, 2),
                label=f"{_time(bucket.start, history)}: {format_value(v)} {title.lower()}",
            )
        )
    highest = max((v for v in values if v is not None), default=0.0)
    summary = f"{title} per {_step_words(history)} over the last {history.window.name}: " + (
        f"highest {format_value(highest)}" if highest else "none"
    )
    return Chart(
        id=id,
        title=title,
        series=series,
        bars=bars,
        top_label=format_value(top),
        first_label=_time(buckets[0].start, history) if buckets else "",
        last_label=_time(buckets[-1].start, history) if buckets else "",
        summary=summary,
    )


def overview_charts(
    history: History, count: Callable[[float], str], duration: Callable[[float], str]
) -> Sequence[Chart]:
    return (
        bar_chart("completed", "Completed", "completed", history, lambda b: b.completed, count),
        bar_chart("failures", "Failed attempts", "failed", history, lambda b: b.errored, count),
        bar_chart("wait", "Mean wait", "wait", history, lambda b: b.mean_wait, duration),
    )


def _time(value: datetime, history: History) -> str:
    if history.window.step.total_seconds() >= 3600 or history.window.span.days >= 1:
        return value.strftime("%b %d %H:%M UTC")
    return value.strftime("%H:%M UTC")


def _step_words(history: History) -> str:
    minutes = int(history.window.step.total_seconds() // 60)
    if minutes == 1:
        return "minute"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minutes"
