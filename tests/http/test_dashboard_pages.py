"""The dashboard's pages and actions through an ASGI client: read-only, a path prefix,
cross-site posts, the token (login redirect, cookie, Bearer), and errors as HTML pages."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient

from durableq.client import Client
from durableq.dashboard.app import DashboardSettings
from durableq.http.app import create_app

HTML = {"Accept": "text/html"}


def test_pages_render_what_the_database_holds(api: TestClient, client: Client) -> None:
    ids = client.enqueue_many([{"type": "email.send", "payload": {"to": "ada@example.com"}}] * 2)
    client.cancel(ids[1])
    overview = api.get("/", headers=HTML)
    assert overview.status_code == 200 and "text/html" in overview.headers["content-type"]
    assert "Overview" in overview.text
    listed = api.get("/jobs", params={"status": "canceled"}, headers=HTML).text
    assert f'href="/jobs/{ids[1]}"' in listed and f'href="/jobs/{ids[0]}"' not in listed
    found = api.get("/jobs", params={"q": "ada@example"}, headers=HTML).text
    assert found.count("email.send") == 2
    page = api.get(f"/jobs/{ids[0]}", headers=HTML).text
    assert "ada@example.com" in page and "cancel</button>" in page


def test_actions_redirect_back_and_say_what_happened(api: TestClient, client: Client) -> None:
    job_id = client.enqueue("t")
    done = api.post(f"/jobs/{job_id}/cancel", headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith(f"/jobs/{job_id}?")
    assert client.get(job_id).status.value == "canceled"
    refused = api.post(f"/jobs/{job_id}/cancel", headers=HTML, follow_redirects=True)
    assert "cancel refused: cannot cancel job" in refused.text
    limits = api.post("/queues/default/limits", data={"concurrency": "x"}, headers=HTML)
    assert "invalid concurrency 'x'" in html.unescape(limits.text)
    assert client.queue("default").concurrency is None


def test_read_only_hides_and_refuses_every_action(client: Client) -> None:
    job_id = client.enqueue("t")
    app = create_app(client, dashboard=DashboardSettings(read_only=True))
    with TestClient(app) as api:
        page = api.get(f"/jobs/{job_id}", headers=HTML).text
        assert '<form method="post"' not in page and "read-only" in page
        refused = api.post(f"/jobs/{job_id}/cancel")
        assert refused.status_code == 403 and refused.json()["code"] == "read_only"
        assert api.post("/queues/default/pause", headers=HTML).status_code == 403
    assert client.get(job_id).status.value == "pending"
    assert not client.queue("default").paused


def test_a_prefix_moves_every_page_link_and_asset(client: Client) -> None:
    client.enqueue("t")
    with TestClient(create_app(client, dashboard=DashboardSettings(prefix="/ops"))) as api:
        page = api.get("/ops/jobs", headers=HTML)
        assert page.status_code == 200
        assert 'href="/ops/jobs/1"' in page.text and 'href="/ops/static/dashboard.css"' in page.text
        assert api.get("/ops/static/dashboard.css").status_code == 200
        assert api.get("/jobs", headers=HTML).status_code == 404
        assert api.get("/api/v1/jobs").status_code == 200  # the API stays where it is


def test_a_post_from_another_site_is_refused(api: TestClient, client: Client) -> None:
    job_id = client.enqueue("t")
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = api.post(f"/jobs/{job_id}/cancel", headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "cross_site"
        assert api.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers).status_code == 403
    assert client.get(job_id).status.value == "pending"
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert (
        api.post(f"/jobs/{job_id}/cancel", headers=same, follow_redirects=False).status_code == 303
    )


def test_with_a_token_browsers_sign_in_and_programs_send_bearer(client: Client) -> None:
    with TestClient(create_app(client, token="s3cret")) as api:
        sent = api.get("/jobs?status=failed", headers=HTML, follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=%2Fjobs%3Fstatus%3Dfailed"
        assert api.get("/login", headers=HTML).status_code == 200
        assert api.get("/static/dashboard.js").status_code == 200
        assert api.get("/api/v1/jobs").status_code == 401
        assert api.get("/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        wrong = api.post("/login", data={"token": "nope"}, follow_redirects=False)
        assert "failed=1" in wrong.headers["location"] and "set-cookie" not in wrong.headers
        signed = api.post(
            "/login", data={"token": "s3cret", "next": "//evil.example/"}, follow_redirects=False
        )
        assert signed.headers["location"] == "/"  # never an open redirect
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert api.get("/jobs", headers=HTML).status_code == 200  # the cookie, kept by the client
        assert api.get("/api/v1/jobs").status_code == 200


def test_errors_are_pages_for_browsers_and_problems_for_programs(api: TestClient) -> None:
    missing = api.get("/jobs/99", headers=HTML)
    assert missing.status_code == 404 and "no job with id 99" in missing.text
    assert "text/html" in missing.headers["content-type"]
    bad = api.get("/jobs", params={"before": "x"}, headers=HTML)
    assert bad.status_code == 422 and "invalid page" in bad.text
    assert api.get("/jobs", params={"created_after": "soon"}, headers=HTML).status_code == 422
    assert api.get("/api/v1/jobs/99", headers=HTML).json()["code"] == "job_not_found"


def test_all_matching_keeps_to_the_date_range_the_list_shows(
    api: TestClient, client: Client
) -> None:
    """The list filtered by created date showed 2 jobs, but "all matching" canceled all 5: the
    action (and the count shown before it) ignored the date fields."""
    from sqlalchemy import text

    ids = client.enqueue_many([{"type": "t"}] * 5)
    with client.engine.begin() as connection:  # three old jobs, two of today
        connection.execute(
            text("UPDATE jobs SET created_at = '2026-01-01 00:00:00.000000' WHERE id <= :n"),
            {"n": ids[2]},
        )
    listed = api.get("/jobs", params={"created_after": "2026-06-01T00:00"}, headers=HTML).text
    assert "all 2 jobs matching this filter" in listed
    api.post(
        "/jobs/actions",
        data={"action": "cancel", "scope": "matching", "created_after": "2026-06-01T00:00"},
        headers=HTML,
    )
    statuses = [client.get(i).status.value for i in ids]
    assert statuses == ["pending"] * 3 + ["canceled"] * 2
