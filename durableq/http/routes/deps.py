"""What every route needs from the application: its client."""

from __future__ import annotations

from fastapi import Request

from durableq.client import Client


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client
