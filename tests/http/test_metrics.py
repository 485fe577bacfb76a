"""Prometheus metrics: the API's /metrics (submissions counted, database gauges), a worker's
execution metrics fed by its events, bounded labels, and the token rule on the metrics app."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from durableq.client import Client
from durableq.core.jobs import Action, ClaimedJob, JobStatus
from durableq.core.outcomes import Finish, Outcome, OutcomeKind
from durableq.http.app import create_metrics_app
from durableq.metrics import OTHER, LabelCap, Metrics
from durableq.worker.events import JobFinished, JobStarted
from tests.http.test_jobs_api import run_to_completion


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus-client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_api_counts_submissions_and_reads_the_database(api: TestClient, client: Client) -> None:
    assert api.post("/api/v1/jobs", json={"type": "mail", "queue": "q"}).status_code == 201
    key = {"Idempotency-Key": "once"}
    assert (
        api.post("/api/v1/jobs", json={"type": "mail", "queue": "q"}, headers=key).status_code
        == 201
    )
    assert (
        api.post("/api/v1/jobs", json={"type": "mail", "queue": "q"}, headers=key).status_code
        == 200
    )
    batch = {"jobs": [{"type": "report"}] * 3}
    assert api.post("/api/v1/jobs/batch", json=batch).status_code == 201
    client.enqueue("late", delay=3600)
    run_to_completion(client)
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    enqueued = "durableq_jobs_enqueued_total"
    assert found[(enqueued, (("queue", "q"), ("type", "mail")))] == 2  # the duplicate is not
    assert found[(enqueued, (("queue", "default"), ("type", "report")))] == 3
    assert found[("durableq_jobs", (("queue", "q"), ("status", "completed")))] == 1
    assert found[("durableq_jobs", (("queue", "q"), ("status", "pending")))] == 1
    assert found[("durableq_jobs", (("queue", "default"), ("status", "pending")))] == 4
    assert found[("durableq_jobs", (("queue", "default"), ("status", "failed")))] == 0
    assert found[("durableq_queue_oldest_due_seconds", (("queue", "default"),))] >= 0
    assert found[("durableq_workers", ())] == 0
    assert found[("durableq_database_up", ())] == 1


def test_worker_events_feed_the_execution_metrics(client: Client) -> None:
    now = client.clock()
    metrics = Metrics(None, clock=lambda: now)
    job = ClaimedJob(1, "mail", "send", {}, 1, 3, None, "token", run_at=now - timedelta(seconds=2))
    metrics.observe(JobStarted(job))
    outcomes = [
        (Action.COMPLETE, JobStatus.COMPLETED, OutcomeKind.SUCCEEDED),
        (Action.RETRY_LATER, JobStatus.PENDING, OutcomeKind.RAISED),
        (Action.FAIL, JobStatus.FAILED, OutcomeKind.RAISED),
    ]
    for action, status, kind in outcomes:
        finish = Finish(1, "token", action, status, 1, finished=status != JobStatus.PENDING)
        metrics.observe(JobFinished(finish, Outcome(job, kind, 0.2), stale=False, at=now))
    stale = Finish(1, "token", Action.COMPLETE, JobStatus.COMPLETED, 1, finished=True)
    metrics.observe(JobFinished(stale, Outcome(job, OutcomeKind.SUCCEEDED, 9.0), True, now))
    found = samples(metrics.exposition().decode())
    finished = "durableq_jobs_finished_total"
    for outcome in ("completed", "retried", "failed"):
        labels = (("outcome", outcome), ("queue", "mail"), ("type", "send"))
        assert found[(finished, labels)] == 1, outcome
    assert found[("durableq_job_duration_seconds_count", (("queue", "mail"),))] == 3
    assert found[("durableq_job_duration_seconds_sum", (("queue", "mail"),))] == 0.6000000000000001
    assert found[("durableq_job_wait_seconds_bucket", (("le", "1.0"), ("queue", "mail")))] == 0
    assert found[("durableq_job_wait_seconds_bucket", (("le", "2.5"), ("queue", "mail")))] == 1


def test_label_values_are_bounded() -> None:
    cap = LabelCap(limit=3)
    assert [cap(name) for name in ("a", "b", "c", "d", "a", "e")] == [
        "a",
        "b",
        "c",
        OTHER,
        "a",
        OTHER,
    ]


def test_the_metrics_app_follows_the_token_rule(client: Client) -> None:
    with TestClient(create_metrics_app(Metrics(client), token="s3cret")) as scraper:
        assert scraper.get("/healthz").status_code == 200
        refused = scraper.get("/metrics")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        allowed = scraper.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200 and "durableq_jobs" in allowed.text
        assert scraper.get("/api/v1/jobs").status_code == 401  # nothing else is served
        assert (
            scraper.get("/api/v1/jobs", headers={"Authorization": "Bearer s3cret"}).status_code
            == 404
        )
