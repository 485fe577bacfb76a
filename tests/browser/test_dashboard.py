"""The dashboard in a real browser: every page opens (screenshots at desktop and phone width,
nothing wider than the screen), a failed job retried from its page becomes pending, a paused
queue stops a live daemon from claiming, "all matching" acts on the whole filter, and a token
makes the browser sign in first."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from durableq.client import Client
from tests.browser.conftest import Served, screenshot, serve
from tests.support.processes import start_worker, stop, wait_until

PAGES = {
    "overview": "/",
    "jobs": "/jobs",
    "jobs-failed": "/jobs?status=failed",
    "job": "/jobs/4",
    "queues": "/queues",
    "workers": "/workers",
    "schedules": "/schedules",
}


def seed(db: Path) -> Client:
    client = Client.open(str(db))
    client.enqueue_many(
        [
            {"type": "email.send", "payload": {"to": f"user{n}@example.com"}, "queue": "mail"}
            for n in range(12)
        ]
        + [{"type": "report.build", "payload": {"month": "2026-11"}, "queue": "reports"}]
    )
    return client


def finish(client: Client, completed: int, failed: int) -> list[int]:
    """Claim jobs and finish them as a worker would: some completed, then some failed for good
    (with an error and a traceback). Returns the failed ones' ids."""
    from durableq.core.jobs import Action, JobStatus
    from durableq.core.outcomes import Finish

    claimed = client.store.claim("w", (), completed + failed, client.clock(), 30.0)
    done = Action.COMPLETE, JobStatus.COMPLETED, None, None
    lost = (
        Action.FAIL,
        JobStatus.FAILED,
        "SMTPError: 550 mailbox unavailable",
        'Traceback (most recent call last):\n  File "tasks.py"\nSMTPError: 550',
    )
    finishes = [
        Finish(j.id, j.lease_token, action, status, j.attempt, True, error=error, traceback=trace)
        for n, j in enumerate(claimed)
        for action, status, error, trace in [done if n < completed else lost]
    ]
    client.store.finish(finishes, client.clock())
    return [j.id for j in claimed[completed:]]


def test_every_page_opens_and_fits_desktop_and_phone(page: Any, served: Served) -> None:
    client = seed(served.db)
    finish(client, completed=3, failed=1)
    client.cancel(6)
    # Count this minute in the history now rather than once it settles, for the charts.
    client.store.roll_up(client.clock() + timedelta(minutes=2), settle=0, keep=86400)
    page.goto(served.base + "/")
    charts = page.locator("figure.chart svg")
    assert charts.count() == 3
    assert page.locator("svg[data-chart=completed] rect.bar").count() == 1
    assert "3 completed" in page.locator("svg[data-chart=completed] rect.bar title").text_content()
    for name, path in PAGES.items():
        response = page.goto(served.base + path)
        assert response.status == 200, (name, response.status)
        assert page.locator("main h1").count() == 1, name
        screenshot(page, f"{name}-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in PAGES.items():
        page.goto(served.base + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a phone screen"
        screenshot(page, f"{name}-390")
    client.close()


def test_retry_a_failed_job_from_its_page(page: Any, served: Served) -> None:
    client = seed(served.db)
    [failed] = finish(client, completed=0, failed=1)
    page.goto(f"{served.base}/jobs/{failed}")
    assert page.locator("h1 .badge").inner_text().endswith("failed")
    page.locator("details summary").click()
    assert "SMTPError: 550" in page.locator("details pre").inner_text()
    page.get_by_role("button", name="retry").click()
    page.wait_for_url(f"**/jobs/{failed}?notice=*")
    assert page.locator("h1 .badge").inner_text().endswith("pending")
    assert client.get(failed).status.value == "pending"
    client.close()


def test_pausing_a_queue_stops_a_live_daemon(page: Any, served: Served, tmp_path: Path) -> None:
    client = Client.open(str(served.db))
    client.enqueue("noop", queue="mail")  # the queue exists, with a job the daemon runs
    daemon = start_worker(served.db, app=None, log_path=tmp_path / "worker.log")
    try:
        wait_until(
            lambda: client.queue("mail").pending == 0 and client.queue("mail").running == 0,
            what="the daemon to run the first job",
        )
        page.goto(f"{served.base}/queues")
        row = page.locator("tr", has_text="mail")
        row.get_by_role("button", name="pause").click()
        page.wait_for_url("**/queues?notice=*")
        assert "paused" in page.locator("tr", has_text="mail").inner_text()
        held = client.enqueue("noop", queue="mail")
        page.wait_for_timeout(2_000)  # a daemon that ignored the pause would have run it by now
        assert client.get(held).status.value == "pending"
        page.locator("tr", has_text="mail").get_by_role("button", name="resume").click()
        page.wait_for_url("**/queues?notice=*")
        wait_until(lambda: client.get(held).status.value == "completed", what="the resumed job")
    finally:
        stop(daemon)
        client.close()


def test_act_on_all_jobs_matching_the_filter(page: Any, served: Served) -> None:
    client = Client.open(str(served.db))
    client.enqueue_many(
        [{"type": "sync", "queue": "bulk"}] * 120 + [{"type": "sync", "queue": "keep"}] * 5
    )
    page.goto(f"{served.base}/jobs?status=pending&queue=bulk")
    assert page.locator("table.jobs tbody tr").count() == 50  # one page of the 120
    page.locator("select[name=scope]").select_option("matching")
    assert "all 120 jobs matching" in page.locator("select[name=scope]").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="cancel").click()
    page.wait_for_url("**/jobs?notice=*")
    assert "cancel: 120 done, 0 skipped" in page.locator(".notice").inner_text()
    assert client.count_jobs(statuses=["canceled"], queues=["bulk"]) == 120
    assert client.count_jobs(statuses=["pending"], queues=["keep"]) == 5
    client.close()


def test_search_by_id_and_payload_text(page: Any, served: Served) -> None:
    client = seed(served.db)
    page.goto(f"{served.base}/jobs?q=user7%40example.com")
    rows = page.locator("table.jobs tbody tr")
    assert rows.count() == 1 and "email.send" in rows.inner_text()
    page.goto(f"{served.base}/jobs?q=13")
    page.get_by_role("link", name="#13").click()
    assert page.locator("h1").inner_text().startswith("Job 13")
    client.close()


def test_a_token_makes_the_browser_sign_in(page: Any, tmp_path: Path) -> None:
    guarded = serve(tmp_path / "durableq.db", "--token", "s3cret-token")
    try:
        page.goto(f"{guarded.base}/queues")
        assert "/login" in page.url
        page.fill("input[name=token]", "wrong")
        page.get_by_role("button", name="sign in").click()
        assert page.locator(".notice.error").is_visible()
        page.fill("input[name=token]", "s3cret-token")
        page.get_by_role("button", name="sign in").click()
        page.wait_for_url(f"{guarded.base}/queues")  # where it was going
        assert page.locator("main h1").inner_text() == "Queues"
        cookie = next(c for c in page.context.cookies() if c["name"] == "durableq_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    finally:
        guarded.process.send_signal(signal.SIGTERM)
        guarded.process.wait(timeout=30)
