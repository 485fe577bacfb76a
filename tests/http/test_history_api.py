"""The throughput history over HTTP and on the overview page: what the rollup counted, by
bucket, as JSON and as SVG bars with their exact values."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from durableq.client import Client
from durableq.core.jobs import JobStatus
from tests.http.test_jobs_api import assert_problem
from tests.support.factories import finished_ago


def _seed(client: Client) -> None:
    finished_ago(client, 4, JobStatus.COMPLETED, timedelta(minutes=5), queue="mail")
    finished_ago(client, 2, JobStatus.COMPLETED, timedelta(minutes=3))
    finished_ago(client, 1, JobStatus.FAILED, timedelta(minutes=3), errors=1)
    client.store.roll_up(client.clock(), settle=60, keep=7 * 86400)


def test_history_by_window_and_queue(api: TestClient, client: Client) -> None:
    _seed(client)
    hour = api.get("/api/v1/stats/history?window=1h").json()
    assert hour["window"] == "1h" and hour["step_seconds"] == 60 and len(hour["buckets"]) == 60
    assert sum(b["completed"] for b in hour["buckets"]) == 6
    assert sum(b["failed"] for b in hour["buckets"]) == 1
    assert sum(b["errored"] for b in hour["buckets"]) == 1
    busiest = max(hour["buckets"], key=lambda b: b["completed"])
    assert busiest["completed"] == 4 and busiest["mean_wait_seconds"] is not None
    assert hour["rolled_up_to"] is not None
    day = api.get("/api/v1/stats/history?window=24h&queue=mail").json()
    assert len(day["buckets"]) == 96 and sum(b["completed"] for b in day["buckets"]) == 4
    assert_problem(
        api.get("/api/v1/stats/history?window=2h"), 422, "invalid_input", "invalid window"
    )


def test_the_overview_draws_the_history_as_svg_bars(api: TestClient, client: Client) -> None:
    _seed(client)
    page = api.get("/").text
    assert page.count('<svg viewBox="0 0 600 170" role="img"') == 3
    assert "<title>" in page and ": 4 completed</title>" in page  # a bar's exact value
    assert "6</strong> completed" in page and "1</strong> failed attempts" in page
    assert api.get("/?window=7d").status_code == 200
    assert "invalid window" in api.get("/?window=1y").text
