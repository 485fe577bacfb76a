"""Queues, workers, stats, schedules, health and readiness, the token rule, the body limit,
and the framework's own errors, all as problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from durableq.client import Client
from durableq.http.app import create_app
from tests.http.test_jobs_api import PROBLEM, assert_problem


def test_queues_list_show_pause_resume_and_limits(api: TestClient, client: Client) -> None:
    client.enqueue_many([{"type": "t", "queue": "mail"}] * 2)
    [mail] = api.get("/api/v1/queues").json()
    assert (mail["name"], mail["pending"], mail["paused"]) == ("mail", 2, False)
    assert api.post("/api/v1/queues/mail/pause").json()["paused"] is True
    assert api.get("/api/v1/queues/mail").json()["paused"] is True
    assert api.post("/api/v1/queues/mail/resume").json()["paused"] is False
    limited = api.patch("/api/v1/queues/mail", json={"concurrency": 3, "rate": "10/1m:2"}).json()
    assert limited["concurrency"] == 3
    assert limited["rate"] == {"count": 10, "period_seconds": 60.0, "burst": 2}
    kept = api.patch("/api/v1/queues/mail", json={"max_pending": 50}).json()
    assert (kept["concurrency"], kept["max_pending"]) == (3, 50)  # a key left out is kept
    cleared = api.patch("/api/v1/queues/mail", json={"concurrency": None, "rate": None}).json()
    assert cleared["concurrency"] is None and cleared["rate"] is None
    assert_problem(
        api.patch("/api/v1/queues/mail", json={"concurrency": 0}),
        422,
        "invalid_input",
        "invalid concurrency 0",
    )
    assert_problem(
        api.patch("/api/v1/queues/mail", json={"rate": "fast"}), 422, "invalid_input", "rate"
    )
    assert_problem(api.post("/api/v1/queues/my mail/pause"), 422, "invalid_input", "invalid queue")
    # Found by schemathesis: a limit past 64 bits was an OverflowError, a 500.
    assert_problem(
        api.patch("/api/v1/queues/mail", json={"concurrency": 2**63}),
        422,
        "invalid_input",
        "at most 2147483647",
    )


def test_workers_stats_and_schedules(api: TestClient, client: Client) -> None:
    client.enqueue("t")
    assert api.get("/api/v1/workers").json() == []
    stats = api.get("/api/v1/stats").json()
    assert stats["counts"]["pending"] == 1 and "oldest_pending_age_seconds" in stats
    assert api.get("/api/v1/schedules").json() == []


def test_health_and_readiness(api: TestClient, client: Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    with client.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    assert_problem(api.get("/readyz"), 503, "not_ready", "run `durableq db upgrade`")


def test_the_frameworks_own_errors_are_problems_too(api: TestClient) -> None:
    assert_problem(api.get("/nowhere"), 404, "not_found", "Not Found")
    assert_problem(api.put("/api/v1/jobs"), 405, "method_not_allowed", "Method Not Allowed")
    assert api.get("/openapi.json").json()["info"]["title"] == "durableq"


def test_a_body_over_the_limit_is_413(client: Client) -> None:
    with TestClient(create_app(client, max_body=2048)) as small:
        big = {"type": "t", "payload": {"blob": "x" * 4096}}
        assert_problem(small.post("/api/v1/jobs", json=big), 413, "body_too_large", "2048 bytes")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"type": "t", "payload": {"blob": "'
            for _ in range(10):
                yield b"x" * 1024
            yield b'"}}'

        streamed = small.post(
            "/api/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(streamed, 413, "body_too_large", "2048 bytes")
        assert small.get("/api/v1/jobs").json()["jobs"] == []


@pytest.fixture
def guarded(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client, token="s3cret")) as test_client:
        yield test_client


def test_with_a_token_every_route_but_healthz_needs_it(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    for path in ("/api/v1/jobs", "/readyz", "/docs", "/openapi.json", "/status/1", "/nowhere"):
        refused = guarded.get(path)
        assert_problem(refused, 401, "unauthorized", "Authorization: Bearer")
        assert refused.headers["www-authenticate"] == "Bearer"
    wrong = guarded.get("/api/v1/jobs", headers={"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401
    basic = guarded.get("/api/v1/jobs", headers={"Authorization": "Basic s3cret"})
    assert basic.status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert guarded.get("/api/v1/jobs", headers=right).status_code == 200
    submitted = guarded.post("/api/v1/jobs", json={"type": "t"}, headers=right)
    assert submitted.status_code == 201
    assert guarded.post("/api/v1/jobs", json={"type": "t"}).headers["content-type"] == PROBLEM
