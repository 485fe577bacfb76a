"""The results: nested figures for --json, and rows with their targets for the printed table.

Targets are the goals durableq is judged against. They are shown next to the figures, never
enforced: a benchmark on a shared, noisy machine reports, it does not fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    op: str  # ">=" or "<="
    value: float
    unit: str

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        return f"{self.op} {number(self.value)}{self.unit}"


@dataclass(frozen=True)
class Row:
    section: str
    label: str
    result: str
    target: Target | None = None
    measured: float | None = None
    figure: str = ""  # where `measured` sits in the JSON, e.g. "idle.pickup.latency_ms.p50"


@dataclass
class Report:
    meta: dict[str, Any]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def record(self, section: str, key: str, figures: dict[str, Any]) -> None:
        self.sections.setdefault(section, {})[key] = figures

    def row(
        self,
        section: str,
        label: str,
        result: str,
        *,
        target: Target | None = None,
        figure: str = "",
    ) -> None:
        measured = self.lookup(figure) if figure else None
        self.rows.append(Row(section, label, result, target, measured, figure))

    def lookup(self, figure: str) -> float:
        value: Any = self.sections
        for part in figure.split("."):
            value = value[part]
        return float(value)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.meta,
            "sections": self.sections,
            "targets": [
                {
                    "figure": row.figure,
                    "label": f"{row.section}: {row.label}",
                    "value": row.measured,
                    "op": row.target.op,
                    "target": row.target.value,
                    "unit": row.target.unit.strip(),
                    "met": row.target.met(row.measured),
                }
                for row in self.rows
                if row.target is not None and row.measured is not None
            ],
        }

    def table(self) -> str:
        header = ("section", "measurement", "result", "target", "met")
        lines = [self._headline(), "", *_columns([header, *map(_cells, self.rows)])]
        return "\n".join(lines)

    def _headline(self) -> str:
        meta = self.meta
        return (
            f"durableq {meta['durableq']} bench: {meta['mode']} run, synchronous="
            f"{meta['synchronous']}, {meta['cpus']} CPU(s), Python {meta['python']}, "
            f"{meta['duration_s']:.0f}s, load average {meta['load_average_start']} at the start, "
            f"{meta['load_average_end']} at the end\n"
            "Rates come from the jobs' own timestamps (first claim to last completion); "
            "targets are goals, not checks."
        )


def _cells(row: Row) -> tuple[str, ...]:
    if row.target is None or row.measured is None:
        return (row.section, row.label, row.result, "", "")
    return (
        row.section,
        row.label,
        row.result,
        str(row.target),
        "yes" if row.target.met(row.measured) else "NO",
    )


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = tuple("-" * width for width in widths)
    lines = []
    for row in [rows[0], rule, *rows[1:]]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return lines


def number(value: float) -> str:
    """Readable at a glance: 12,345 for big numbers, 3 significant digits for small ones."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def rate(value: float) -> str:
    return f"{number(value)} jobs/s"


def ms(value: float) -> str:
    return f"{number(value)} ms"
