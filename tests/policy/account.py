"""Tests on one exchange account shared by several servers: a standalone simulator (the account), the test's own
python-binance client on it, and ``binance-mcp serve`` processes trading it over stdio."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from binance import Client
from fastmcp import Client as McpClient
from fastmcp.client.transports import StdioTransport

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.runner import RunningSimulator, start_in_thread
from tests.policy.test_guard_helpers import SERVE, D, Paper, server_env


@pytest.fixture(scope="module")
def exchange() -> RunningSimulator:
    sim = start_in_thread(SimConfig(controls=True, tick_seconds=0))
    yield sim
    sim.stop()


@pytest.fixture
def acct(exchange: RunningSimulator) -> RunningSimulator:
    exchange.control("reset", {})
    return exchange


@pytest.fixture
def binance(acct: RunningSimulator) -> Client:
    """The test's own view of the exchange account."""
    c = Client(acct.api_key, acct.api_secret, ping=False)
    c.API_URL, c.FUTURES_URL = acct.base_url + "/api", acct.base_url + "/fapi"
    yield c
    c.close_connection()


@asynccontextmanager
async def serve_on(sim: RunningSimulator, state_dir: Path, policy: Path, **extra: str):
    """``binance-mcp serve`` trading the simulator's account (BINANCE_MCP_BASE_URL with its keys); ``extra``:
    more settings."""
    env = server_env(state_dir, policy, BINANCE_API_KEY=sim.api_key, BINANCE_API_SECRET=sim.api_secret,
                     BINANCE_MCP_BASE_URL=sim.base_url, **extra)
    transport = StdioTransport(command=sys.executable, args=SERVE, env=env)
    async with McpClient(transport, mode="legacy", timeout=60) as client:
        yield Paper(client, sim.base_url.removeprefix("http://"), state_dir, policy)


def order_posts(sim: RunningSimulator, since: int, path: str) -> list[dict]:
    """Order requests the exchange received after request ``since`` (its own log), accepted or not."""
    return [e for e in sim.control(f"requests?since={since}") if e["path"] == path and e["method"] == "POST"]


def codes(results) -> list[str]:
    return sorted(r.content[0].text.split(":")[0] for r in results if r.is_error)


def futures_position(binance: Client, symbol: str = "BTCUSDT") -> Decimal:
    return sum((D(r["positionAmt"]) for r in binance.futures_position_information(symbol=symbol)), Decimal(0))


