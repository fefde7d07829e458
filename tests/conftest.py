"""Shared fixtures: a real simulator over HTTP on 127.0.0.1 and real python-binance clients pointed at it."""

from __future__ import annotations

import os

import pytest
from binance import AsyncClient, Client

from binance_mcp.simulator.runner import RunningSimulator
from tests.helpers import point_at, simulator

# No test reads or writes the developer's own OS keychain (a server given an API key and no secret looks there):
# the keyring library, when installed, answers from an empty keyring here and in every server the tests start.
# The keychain tests select a file-based backend of their own (tests/keyring_backend.py).
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"


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
