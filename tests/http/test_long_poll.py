"""Long-polls hold no server thread: more waiters than the thread pool has threads, and the
server still answers other requests at once; a commit wakes them all."""

from __future__ import annotations

import asyncio
import time

import httpx2 as httpx
import pytest

from durableq.client import Client
from durableq.http.app import create_app
from tests.http.test_jobs_api import run_to_completion

WAITERS = 60  # anyio's default pool has 40 threads


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_many_waiters_do_not_starve_the_server(client: Client) -> None:
    app = create_app(client)
    job_id = client.enqueue("t")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        waits = [
            asyncio.create_task(http.get(f"/api/v1/jobs/{job_id}/result", params={"wait": "20s"}))
            for _ in range(WAITERS)
        ]
        await asyncio.sleep(0.5)  # every waiter is now asleep on the broadcast
        started = time.monotonic()
        submitted = await http.post("/api/v1/jobs", json={"type": "other"})
        listed = await http.get("/api/v1/jobs", params={"limit": 5})
        assert submitted.status_code == 201 and listed.status_code == 200
        assert time.monotonic() - started < 2
        assert not any(wait.done() for wait in waits)
        await asyncio.to_thread(run_to_completion, client)
        answers = await asyncio.wait_for(asyncio.gather(*waits), timeout=10)
    assert time.monotonic() - started < 10
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.json()["status"] for answer in answers} == {"completed"}
    app.state.writer.close()
    app.state.changes.close()
