"""schemathesis against the served /openapi.json: generated requests to every route (valid and
not) must never meet a server error, and every response must be what the document promises
(status, content type, body schema).

The app is made at import (schemathesis parametrizes at collection), on a database in a
temporary directory with jobs in several states, so that ids 1-3 exist and transitions are tried.
"""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    negative_data_rejection,
    positive_data_acceptance,
)

from durableq.client import Client  # noqa: E402
from durableq.http.app import create_app  # noqa: E402

_scratch = tempfile.TemporaryDirectory(prefix="durableq-openapi-")
atexit.register(_scratch.cleanup)
_client = Client.open(str(Path(_scratch.name) / "durableq.db"))
atexit.register(_client.close)
_first, _second, _third = _client.enqueue_many([{"type": "t"}, {"type": "u"}, {"type": "v"}])
_client.cancel(_second)

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_client))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_keeps_to_its_documented_schema(case: object) -> None:
    # Not the two data-acceptance checks: a body the JSON schema allows may still be refused
    # with 422 for what a schema cannot say (a delay and a run_at together, a duration's
    # spelling, a job type's characters), and a body it forbids may be refused with 413 (too
    # large) before it is read; both with a problem+json that the document does promise.
    case.call_and_validate(  # type: ignore[attr-defined]
        excluded_checks=[positive_data_acceptance, negative_data_rejection]
    )
