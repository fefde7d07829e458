"""An exchange that is not there, or that never answers: tools/list still answers, calls fail fast and
clearly with EXCHANGE_UNAVAILABLE, diagnostics report it, and one hung call does not freeze the server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from tests.e2e.conftest import server_env, stdio_client
from tests.e2e.test_protocol import TOOLS_MD

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT = 2.0  # BINANCE_MCP_TIMEOUT of the unreachable-exchange server
HUNG_TIMEOUT = 3.0  # and of the hung-exchange one (slack for a loaded machine: sequential calls would take 6 s)


def live_env(tmp_path, url: str, timeout: float = TIMEOUT) -> dict[str, str]:
    return server_env(tmp_path, BINANCE_API_KEY="e2eKey" + "0" * 58, BINANCE_API_SECRET="e2eSecret" + "1" * 55,
                      BINANCE_MCP_MODE="live", BINANCE_MCP_BASE_URL=url, BINANCE_MCP_TIMEOUT=str(timeout))


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connections are refused
    return port


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; it closes itself after ``life`` s."""

    def __init__(self, life: float = 30.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.deadline = time.monotonic() + life
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                continue
        self.close()

    def close(self) -> None:
        self.deadline = 0
        for c in self.accepted:
            c.close()
        self.sock.close()


async def test_unreachable_exchange(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    async with stdio_client(live_env(tmp_path, url)) as client:
        started = time.monotonic()
        tools = await client.list_tools()
        assert set(TOOLS_MD) <= {t.name for t in tools} and time.monotonic() - started < 5
        by_name = {t.name: t for t in tools}
        assert by_name["binance_spot_place_order"].annotations.destructive_hint is True

        for name, args in [("binance_spot_price", {"symbol": "BTCUSDT"}), ("binance_account_info", {}),
                           ("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                         "quantity": "0.001"})]:
            started = time.monotonic()
            r = await client.call_tool(name, args, raise_on_error=False)
            assert time.monotonic() - started < TIMEOUT, name  # refused at once, not after a timeout
            text = r.content[0].text
            # An order that could not even connect is known not to exist: the report says so.
            code = "ORDER_NOT_PLACED: " if name == "binance_spot_place_order" else "EXCHANGE_UNAVAILABLE: "
            assert r.is_error and text.startswith(code), text
            assert "unreachable" in text and url.removeprefix("http://") in text and "retry" in text

        status = await client.call_tool("binance_account_status", {}, raise_on_error=False)
        assert status.is_error is False
        st = status.structured_content
        assert st["connected"] is False and st["exchange"] == "live" and st["host"] == url.removeprefix("http://")
        assert "unreachable" in st["error"] and "serverTime" not in st and "clockDriftMs" not in st
        # Bad input is still reported as bad input, not as the outage.
        bad = await client.call_tool("binance_spot_price", {"symbol": "?"}, raise_on_error=False)
        assert bad.content[0].text.startswith("INVALID_INPUT")


async def test_hung_exchange_does_not_freeze_the_server(tmp_path):
    hole = BlackHole(life=30)
    try:
        async with stdio_client(live_env(tmp_path, f"http://127.0.0.1:{hole.port}", HUNG_TIMEOUT)) as client:
            await client.list_tools()
            started = time.monotonic()
            stuck = asyncio.create_task(client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"},
                                                         raise_on_error=False))
            stuck2 = asyncio.create_task(client.call_tool("binance_futures_price", {"symbol": "BTCUSDT"},
                                                          raise_on_error=False))
            for _ in range(50):  # the first exchange call loads python-binance, then connects
                if hole.accepted:
                    break
                await asyncio.sleep(0.1)
            assert hole.accepted, "the server never connected to the hung exchange"
            # While both calls wait on the exchange, the server keeps answering.
            tools = await client.list_tools()
            assert len(tools) >= 35 and not stuck.done()
            bad = await client.call_tool("binance_calculate_position_size", {"symbol": "BTCUSDT", "riskAmount": "1",
                                                                             "entryPrice": "1", "stopLossPrice": "1"},
                                         raise_on_error=False)
            assert bad.content[0].text.startswith("INVALID_INPUT") and not stuck.done()
            assert time.monotonic() - started < HUNG_TIMEOUT
            r1, r2 = await asyncio.wait_for(asyncio.gather(stuck, stuck2), timeout=4 * HUNG_TIMEOUT)
            elapsed = time.monotonic() - started
            # Concurrent, and each bounded: a read may retry once within twice the timeout.
            assert HUNG_TIMEOUT * 0.9 <= elapsed < 3.5 * HUNG_TIMEOUT, elapsed  # bounded (a loaded machine adds some)
            for r in (r1, r2):
                text = r.content[0].text
                assert r.is_error and text.startswith("EXCHANGE_UNAVAILABLE: "), text
                assert f"no answer within {HUNG_TIMEOUT:g} s" in text
            status = await client.call_tool("binance_account_status", {}, raise_on_error=False)
            assert status.structured_content["connected"] is False
            assert "no answer" in status.structured_content["error"]
    finally:
        hole.close()
