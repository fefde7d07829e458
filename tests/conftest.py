"""Shared fixtures: a real simulator over HTTP on 127.0.0.1 and real python-binance clients pointed at it."""

from __future__ import annotations

import pytest
from binance import AsyncClient, Client

from binance_mcp.simulator.runner import RunningSimulator
from tests.helpers import point_at, simulator


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
