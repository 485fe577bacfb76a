"""The API in-process through an ASGI client (starlette's TestClient, httpx underneath)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from durableq.client import Client
from durableq.http.app import create_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client.open(str(tmp_path / "durableq.db")) as opened:
        yield opened


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as test_client:
        yield test_client
