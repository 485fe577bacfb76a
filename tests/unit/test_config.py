"""Settings from the environment: every variable parsed, bad values refused with the name."""

from __future__ import annotations

import pytest

from durableq.core.config import Settings, database_url
from durableq.core.errors import InvalidInput
from durableq.core.retry import Backoff


def test_defaults_are_durable() -> None:
    settings = Settings.from_env({})
    assert settings.synchronous == "FULL"
    assert settings.busy_timeout == 10.0
    assert settings.lease == 30.0
    assert settings.heartbeat_interval == 10.0
    assert settings.backoff == Backoff()


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "DURABLEQ_DATABASE": "/tmp/x.db",
            "DURABLEQ_SYNCHRONOUS": "normal",
            "DURABLEQ_BUSY_TIMEOUT": "2500ms",
            "DURABLEQ_LEASE": "2s",
            "DURABLEQ_POLL_INTERVAL": "50ms",
            "DURABLEQ_MAX_ATTEMPTS": "4",
            "DURABLEQ_BACKOFF_BASE": "200ms",
            "DURABLEQ_BACKOFF_CAP": "1m",
            "DURABLEQ_BACKOFF_FACTOR": "3",
            "DURABLEQ_BACKOFF_JITTER": "0",
        }
    )
    assert settings.database == "sqlite:////tmp/x.db"
    assert settings.synchronous == "NORMAL"
    assert (settings.busy_timeout, settings.lease, settings.poll_interval) == (2.5, 2.0, 0.05)
    assert settings.default_max_attempts == 4
    assert settings.backoff == Backoff(base=0.2, factor=3.0, cap=60.0, jitter=0.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DURABLEQ_SYNCHRONOUS", "sometimes", "invalid synchronous level"),
        ("DURABLEQ_LEASE", "100ms", "at least 500ms"),
        ("DURABLEQ_LEASE", "soon", "invalid duration"),
        ("DURABLEQ_MAX_ATTEMPTS", "0", "DURABLEQ_MAX_ATTEMPTS"),
        ("DURABLEQ_MAX_ATTEMPTS", "many", "DURABLEQ_MAX_ATTEMPTS"),
        ("DURABLEQ_BACKOFF_FACTOR", "x", "DURABLEQ_BACKOFF_FACTOR"),
        ("DURABLEQ_BACKOFF_FACTOR", "0.5", "factor must be at least 1"),
        ("DURABLEQ_BACKOFF_JITTER", "2", "jitter must be between 0 and 1"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Settings.from_env({name: value})


def test_database_urls() -> None:
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert database_url("rel.db").startswith("sqlite:////")
    with pytest.raises(InvalidInput, match="database path is empty"):
        database_url("  ")
