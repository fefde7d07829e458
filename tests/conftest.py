"""Shared fixtures: a real simulator over HTTP on 127.0.0.1 and real python-binance clients pointed at it."""

from __future__ import annotations

import pytest
from binance import AsyncClient, Client

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.runner import RunningSimulator, start_in_thread


def point_at(client, base_url: str):
    """Point a python-binance client (sync or async) at ``base_url`` instead of Binance."""
    client.API_URL = base_url + "/api"
    client.FUTURES_URL = base_url + "/fapi"
    return client


@pytest.fixture(scope="session")
def shared_sim() -> RunningSimulator:
    rs = start_in_thread(SimConfig(controls=True, tick_seconds=0))
    yield rs
    rs.stop()


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
