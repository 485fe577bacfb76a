"""Templates (Jinja2, autoescaped) and what every page gets: its base path, the navigation, the
read-only flag, the refresh default, and a few formatting helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
NAV = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/queues", "Queues"),
    ("/workers", "Workers"),
    ("/schedules", "Schedules"),
)
SYMBOLS = {
    "pending": "◷",
    "running": "▶",
    "completed": "✓",
    "failed": "✗",
    "canceled": "⊘",
}
REFRESH_SECONDS = 5

templates = Jinja2Templates(directory=str(HERE / "templates"))


def seconds(value: float) -> str:
    """A duration as people read it: 850 ms, 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    whole = int(value)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // smaller_size
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def rate(value: dict[str, Any] | None, none: str = "∞") -> str:
    if not value:
        return none
    text = f"{value['count']}/{value['period_seconds']:g}s"
    return text + (f":{value['burst']}" if value["burst"] != 1 else "")


templates.env.globals.update(symbols=SYMBOLS, seconds=seconds, pretty=pretty, rate=rate)


def page(request: Request, name: str, title: str, here: str, **context: Any) -> HTMLResponse:
    settings = request.app.state.dashboard
    return templates.TemplateResponse(
        request,
        name,
        {
            "title": title,
            "here": here,
            "base": settings.prefix,
            "nav": NAV,
            "read_only": settings.read_only,
            "refresh": REFRESH_SECONDS,
            "notice": request.query_params.get("notice"),
            **context,
        },
    )
