"""The store conformance suite is every test here that takes `any_client`: it runs once per store.

These two tests keep it so: a new store must be added to the fixture's parameters, and each
parameter must reach the store of its dialect.
"""

from __future__ import annotations

from durableq.client import Client
from durableq.store.core.store import CoreStore
from durableq.store.postgres.store import PostgresStore
from durableq.store.sqlite.store import SqliteStore

STORE_OF = {"sqlite": SqliteStore, "postgresql": PostgresStore}


def test_the_suite_knows_every_store() -> None:
    assert set(CoreStore.__subclasses__()) == set(STORE_OF.values())


def test_each_backend_runs_its_own_store(any_client: Client) -> None:
    assert type(any_client.store) is STORE_OF[any_client.store.dialect]
