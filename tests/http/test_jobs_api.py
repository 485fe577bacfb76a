"""/api/v1/jobs and the seed's routes: every endpoint, and every error as problem+json."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from durableq.client import Client
from durableq.core.jobs import Action, JobStatus
from durableq.core.outcomes import Finish

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, code: str, says: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:durableq:problem:{code}" and body["title"]
    assert says in body["detail"], body["detail"]
    assert "Traceback" not in response.text
    return body


def run_to_completion(client: Client, result: str = "[1, 2]") -> int:
    [job] = client.store.claim("w1", (), 1, client.clock(), 30.0)
    done = Finish(
        job.id,
        job.lease_token,
        Action.COMPLETE,
        JobStatus.COMPLETED,
        job.attempt,
        finished=True,
        result_json=result,
    )
    assert client.store.finish([done], client.clock()) == []
    return job.id


def test_submit_returns_201_the_job_and_its_location(api: TestClient) -> None:
    response = api.post(
        "/api/v1/jobs",
        json={"type": "email.send", "payload": {"to": "ada"}, "queue": "mail", "delay": "30s"},
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["type"], job["queue"], job["status"], job["payload"]) == (
        "email.send",
        "mail",
        "pending",
        {"to": "ada"},
    )
    assert job["run_at"] > job["created_at"]
    shown = api.get(response.headers["location"]).json()
    assert shown["id"] == job["id"] and shown["errors"] == []


def test_an_idempotency_key_header_returns_the_original_job(api: TestClient) -> None:
    body = {"type": "charge", "payload": {"order": 42}}
    first = api.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    again = api.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "order-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["idempotency_key"] == "order-42"
    other = api.post(
        "/api/v1/jobs",
        json={"type": "charge", "payload": {"order": 43}},
        headers={"Idempotency-Key": "order-42"},
    )
    assert_problem(other, 422, "idempotency_conflict", "which has another payload")
    assert len(api.get("/api/v1/jobs").json()["jobs"]) == 1


def test_unique_in_the_body(api: TestClient) -> None:
    body = {"type": "sync", "payload": {"user": 1}, "unique": True}
    first = api.post("/api/v1/jobs", json=body)
    again = api.post("/api/v1/jobs", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_bad_submissions_are_422_with_the_clis_wording(api: TestClient) -> None:
    cases = [
        ({"type": "a b"}, "invalid type 'a b'"),
        ({"type": "t", "delay": "soon"}, "invalid duration 'soon'"),
        ({"type": "t", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"payload": {}}, "type: Field required"),
        ({"type": "t", "payload": [1]}, "payload"),
        ({"type": "t", "delay": "1s", "run_at": "2030-01-01T00:00:00Z"}, "not both"),
        ({"type": "t", "unique": {"states": ["pending"]}}, "must include pending and running"),
    ]
    for body, says in cases:
        assert_problem(api.post("/api/v1/jobs", json=body), 422, "invalid_input", says)
    assert_problem(
        api.post(
            "/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "invalid_input",
        "JSON",
    )
    assert api.get("/api/v1/jobs").json()["jobs"] == []


def test_a_full_queue_is_429_with_retry_after(api: TestClient, client: Client) -> None:
    client.set_queue("mail", max_pending=1)
    assert api.post("/api/v1/jobs", json={"type": "t", "queue": "mail"}).status_code == 201
    full = api.post("/api/v1/jobs", json={"type": "t", "queue": "mail"})
    assert_problem(full, 429, "queue_full", 'queue "mail" is full: 1 pending, max 1')
    assert full.headers["retry-after"] == "1"


def test_a_batch_is_all_or_nothing(api: TestClient) -> None:
    jobs = [{"type": "t", "payload": {"n": n}} for n in range(100)]
    response = api.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201
    assert len(response.json()["ids"]) == 100 and response.json()["duplicates"] == []
    bad = api.post("/api/v1/jobs/batch", json={"jobs": [{"type": "t"}, {"type": "a b"}]})
    assert_problem(bad, 422, "invalid_input", "job 2 of the batch: invalid type")
    too_many = api.post("/api/v1/jobs/batch", json={"jobs": [{"type": "t"}] * 10_001})
    assert_problem(too_many, 422, "invalid_input", "at most 10000")
    assert len(api.get("/api/v1/jobs", params={"limit": 1000}).json()["jobs"]) == 100


def test_list_filters_and_pages_by_cursor(api: TestClient, client: Client) -> None:
    ids = client.enqueue_many([{"type": "a" if n % 2 else "b"} for n in range(7)])
    page = api.get("/api/v1/jobs", params={"type": "a", "limit": 2}).json()
    assert [job["id"] for job in page["jobs"]] == [str(ids[5]), str(ids[3])]
    rest = api.get("/api/v1/jobs", params={"type": "a", "limit": 2, "cursor": page["next_cursor"]})
    assert [job["id"] for job in rest.json()["jobs"]] == [str(ids[1])]
    assert rest.json()["next_cursor"] is None
    statuses = api.get("/api/v1/jobs", params=[("status", "pending"), ("status", "failed")])
    assert len(statuses.json()["jobs"]) == 7
    future = api.get("/api/v1/jobs", params={"created_after": "2999-01-01T00:00:00Z"})
    assert future.json()["jobs"] == []
    assert_problem(
        api.get("/api/v1/jobs", params={"status": "done"}), 422, "invalid_input", "unknown status"
    )
    assert_problem(
        api.get("/api/v1/jobs", params={"cursor": "x"}), 422, "invalid_input", "invalid cursor"
    )
    assert_problem(api.get("/api/v1/jobs", params={"limit": 0}), 422, "invalid_input", "limit")


def test_show_unknown_and_malformed_ids(api: TestClient) -> None:
    assert_problem(api.get("/api/v1/jobs/99"), 404, "job_not_found", "no job with id 99")
    assert_problem(api.get("/api/v1/jobs/abc"), 422, "invalid_input", "invalid job id 'abc'")


def test_the_result_waits_and_says_202_until_finished(api: TestClient, client: Client) -> None:
    job_id = client.enqueue("t")
    pending = api.get(f"/api/v1/jobs/{job_id}/result")
    assert pending.status_code == 202 and pending.json()["status"] == "pending"
    timer = threading.Timer(0.3, run_to_completion, args=(client,))
    timer.start()
    started = time.monotonic()
    done = api.get(f"/api/v1/jobs/{job_id}/result", params={"wait": "10s"})
    assert done.status_code == 200 and time.monotonic() - started < 5
    assert done.json() == {
        "id": str(job_id),
        "status": "completed",
        "result": [1, 2],
        "last_error": None,
        "finished_at": done.json()["finished_at"],
    }
    assert_problem(
        api.get(f"/api/v1/jobs/{job_id}/result", params={"wait": "later"}),
        422,
        "invalid_input",
        "invalid duration",
    )


def test_cancel_retry_delete_and_their_conflicts(api: TestClient, client: Client) -> None:
    job_id = client.enqueue("t")
    assert api.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "canceled"
    assert_problem(
        api.post(f"/api/v1/jobs/{job_id}/cancel"), 409, "invalid_transition", "it is canceled"
    )
    assert api.post(f"/api/v1/jobs/{job_id}/retry").json()["status"] == "pending"
    assert_problem(api.delete(f"/api/v1/jobs/{job_id}"), 409, "invalid_transition", "pending")
    run_to_completion(client)
    assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert api.get(f"/api/v1/jobs/{job_id}").status_code == 404


def test_bulk_actions_by_ids_and_by_filter(api: TestClient, client: Client) -> None:
    ids = client.enqueue_many([{"type": "t", "queue": "q1"}] * 3 + [{"type": "t", "queue": "q2"}])
    by_ids = api.post("/api/v1/jobs/cancel", json={"ids": [str(ids[0]), "99"]}).json()
    assert by_ids["done"] == 1 and by_ids["skipped"] == 1
    assert "no job with id 99" in by_ids["reasons"][0]
    by_filter = api.post(
        "/api/v1/jobs/cancel", json={"filter": {"queue": ["q1"], "status": ["pending"]}}
    ).json()
    assert by_filter == {"done": 2, "skipped": 0, "reasons": []}
    retried = api.post("/api/v1/jobs/retry", json={"filter": {"status": ["canceled"]}}).json()
    assert retried["done"] == 3
    assert api.post("/api/v1/jobs/delete", json={"ids": [str(ids[3])]}).json()["skipped"] == 1
    assert_problem(api.post("/api/v1/jobs/cancel", json={}), 422, "invalid_input", '"ids" or')


def test_the_seed_routes(api: TestClient, client: Client) -> None:
    created = api.post("/job", json={"type": "t", "payload": {"x": 1}})
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert api.get(f"/status/{job_id}").json()["status"] == "pending"
    assert api.get(f"/result/{job_id}").status_code == 202
    run_to_completion(client, '{"ok": true}')
    assert api.get(f"/result/{job_id}").json()["result"] == {"ok": True}
    assert_problem(api.get("/status/12345"), 404, "job_not_found", "no job with id 12345")
