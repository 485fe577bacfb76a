"""The HTTP section's baseline: FastAPI on uvicorn, the same request model, no database.

`python -m durableq.benchmark.bare HOST:PORT` serves POST /api/v1/jobs and /api/v1/jobs/batch
that validate the body as the real routes do and answer 201 without storing anything, so the
difference to `durableq serve` is what the queue itself costs per request.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from durableq.http.models import BatchIn, JobIn

app = FastAPI()
_ids = itertools.count(1)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/jobs", status_code=201)
async def submit(body: JobIn) -> dict[str, Any]:
    return {"id": str(next(_ids)), "type": body.type, "status": "pending"}


@app.post("/api/v1/jobs/batch", status_code=201)
async def submit_batch(body: BatchIn) -> dict[str, Any]:
    return {"ids": [str(next(_ids)) for _ in body.jobs], "duplicates": []}


if __name__ == "__main__":
    host, _, port = sys.argv[1].rpartition(":")
    uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
