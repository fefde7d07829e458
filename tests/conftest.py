"""Shared fixtures: a real simulator over HTTP on 127.0.0.1 and real python-binance clients pointed at it."""

from __future__ import annotations

import os
import shutil

import pytest
from binance import AsyncClient, Client

from binance_mcp.simulator.runner import RunningSimulator
from tests import pgserver
from tests.helpers import point_at, simulator

# No test reads or writes the developer's own OS keychain (a server given an API key and no secret looks there):
# the keyring library, when installed, answers from an empty keyring here and in every server the tests start.
# The keychain tests select a file-based backend of their own (tests/keyring_backend.py).
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
# No test uses the developer's own PostgreSQL: a store is on SQLite unless a test's ``store_backend`` says otherwise.
os.environ.pop(pgserver.URL_ENV, None)


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session (tests/pgserver.py)."""
    server = pgserver.start_server()
    if server is None:
        message = "no PostgreSQL server here (initdb): apt-get install postgresql"
        if pgserver.REQUIRED:
            pytest.fail(message + " (BINANCE_MCP_PG_REQUIRED=1)")
        pytest.skip(message)
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request, monkeypatch) -> str | None:
    """Runs a test on each state-store backend: SQLite in the state directory, or a fresh schema of the session's
    PostgreSQL, through BINANCE_MCP_STATE_URL (what every StateStore, in process or in a server the test starts
    with tests.helpers.clean_env, reads). The URL, or None for SQLite."""
    if request.param == "sqlite":
        monkeypatch.delenv(pgserver.URL_ENV, raising=False)
        return None
    url = request.getfixturevalue("pg_server").new_schema()
    monkeypatch.setenv(pgserver.URL_ENV, url)
    return url


@pytest.fixture(scope="session")
def shared_sim() -> RunningSimulator:
    with simulator() as rs:
        yield rs


@pytest.fixture
def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    """A simulator with fresh state for each test (frozen feed: prices move only through the controls)."""
    shared_sim.control("reset", {})
    return shared_sim


@pytest.fixture
def client(sim: RunningSimulator) -> Client:
    c = Client(sim.api_key, sim.api_secret, ping=False)
    point_at(c, sim.base_url)
    yield c
    c.close_connection()


@pytest.fixture
async def async_client(sim: RunningSimulator) -> AsyncClient:
    c = AsyncClient(sim.api_key, sim.api_secret)
    point_at(c, sim.base_url)
    yield c
    await c.close_connection()
