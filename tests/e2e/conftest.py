"""End-to-end fixtures: ``binance-mcp serve`` as a real subprocess, spoken to over stdio by fastmcp's client.

One paper-mode server serves the whole session (start-up costs about a second). Its embedded simulator is
found through ``binance_account_status``'s ``host`` and driven with the ``/_sim/`` controls over plain HTTP;
the same simulator's public and signed REST endpoints give the tests their own view of the exchange, so
results are checked against values the test computed, not against what the server says about itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from binance_mcp.simulator.config import DEFAULT_API_KEY, DEFAULT_API_SECRET

HERE = Path(__file__).parent
EXPONENT = re.compile(r"-?[0-9.]+[eE][-+]?[0-9]+")
ALLOW_ALL = HERE / "allow-all.yaml"


def server_env(state_dir: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a test server: ours minus every BINANCE_* variable, plus the test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    env.update(BINANCE_MCP_STATE_DIR=str(state_dir), BINANCE_MCP_PAPER_TICK_SECONDS="0",
               BINANCE_MCP_POLICY=str(ALLOW_ALL))
    env.update(extra)
    return env


def stdio_client(env: dict[str, str]) -> Client:
    transport = StdioTransport(command=sys.executable, args=["-m", "binance_mcp", "serve"], env=env)
    return Client(transport, mode="legacy")


def http_json(url: str, body: dict | None = None, method: str | None = None,
              headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method or ("POST" if body is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # Binance errors are JSON bodies with a 4xx status
        return json.loads(exc.read())


def D(value: object) -> Decimal:
    return Decimal(str(value))


def assert_no_floats(value: Any, where: str) -> None:
    """Quantities and prices leave the server as decimal strings, never as JSON floats."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert_no_floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_no_floats(v, f"{where}[{i}]")
    else:
        assert not isinstance(value, float), f"{where} is the float {value!r}"
        if isinstance(value, str):
            assert not EXPONENT.fullmatch(value), f"{where} is in exponent notation: {value}"


class Paper:
    """The session's paper server: MCP calls plus direct access to its simulator."""

    def __init__(self, client: Client, host: str) -> None:
        self.client = client
        self.host = host
        assert host.startswith("127.0.0.1:"), host
        self.base = f"http://{host}"

    # -- MCP ------------------------------------------------------------------------------------
    async def call(self, name: str, args: dict | None = None) -> dict:
        """Call a tool that must succeed; its structured content."""
        r = await self.client.call_tool(name, args or {}, raise_on_error=False)
        assert not r.is_error, f"{name} failed: {r.content[0].text if r.content else r}"
        assert r.structured_content is not None
        # The text block carries the same JSON (clients without structured content read it).
        assert json.loads(r.content[0].text) == r.structured_content
        assert_no_floats(r.structured_content, name)
        return r.structured_content

    async def error(self, name: str, args: dict | None = None) -> str:
        """Call a tool that must fail; its error text."""
        r = await self.client.call_tool(name, args or {}, raise_on_error=False)
        assert r.is_error, f"{name} should have failed but returned {r.structured_content}"
        assert r.structured_content is None
        return r.content[0].text

    async def invalid(self, name: str, args: dict, *words: str) -> str:
        """Bad input: INVALID_INPUT naming the problem, and nothing reached the exchange."""
        before = self.state()
        text = await self.error(name, args)
        after = self.state()
        assert text.startswith("INVALID_INPUT: "), text
        assert name in text and "Nothing was sent to the exchange" in text, text
        for word in words:
            assert word in text, f"{word!r} not in {text!r}"
        assert (after["requests"], after["last_seq"]) == (before["requests"], before["last_seq"]), \
            self.requests(before["last_seq"])
        return text

    async def rejected(self, name: str, args: dict, code: int, *words: str, fault: str | None = None) -> str:
        """An exchange rejection: the Binance code, its message and the advice, as one readable error.

        ``fault``: the rejection comes from an injected simulator fault of this kind (logged without a code).
        """
        before = self.state()["last_seq"]
        text = await self.error(name, args)
        assert text.startswith("EXCHANGE_REJECTED: "), text
        assert f"(Binance code {code})" in text, text
        for word in words:
            assert word in text, f"{word!r} not in {text!r}"
        log = self.requests(before)
        if fault is None:
            assert code in [e["code"] for e in log], log  # the exchange really answered with that code
        else:
            assert fault in [e.get("fault") for e in log], log
        return text

    # -- the simulator --------------------------------------------------------------------------
    def sim(self, path: str, body: dict | None = None, method: str | None = None) -> Any:
        answer = http_json(f"{self.base}/_sim/{path}", body, method)
        assert not (isinstance(answer, dict) and "error" in answer), answer  # a control the test got wrong
        return answer

    def state(self) -> dict:
        return self.sim("state")

    def requests(self, since: int = 0) -> list[dict]:
        return self.sim(f"requests?since={since}")

    def last_seq(self) -> int:
        return self.state()["last_seq"]

    def reset(self) -> None:
        self.sim("reset", {})

    def set_price(self, symbol: str, price: str | Decimal | None = None, market: str = "spot",
                  mark: str | Decimal | None = None) -> dict:
        body: dict = {"symbol": symbol, "market": market}
        if price is not None:
            body["price"] = str(price)
        if mark is not None:
            body["mark"] = str(mark)
        return self.sim("price", body)

    def balances(self, spot: dict | None = None, futures: dict | None = None, replace: bool = False) -> dict:
        body: dict = {"replace": replace}
        if spot is not None:
            body["spot"] = {k: str(v) for k, v in spot.items()}
        if futures is not None:
            body["futures"] = {k: str(v) for k, v in futures.items()}
        return self.sim("balances", body)

    def public(self, path: str, **params: object) -> Any:
        """A public Binance endpoint of the simulator, e.g. public('/api/v3/depth', symbol='BTCUSDT')."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return http_json(f"{self.base}{path}" + (f"?{query}" if query else ""))

    def signed(self, path: str, method: str = "GET", **params: object) -> Any:
        """A signed Binance endpoint of the simulator (the paper simulator runs with the default credentials)."""
        params = {k: v for k, v in params.items() if v is not None}
        params["timestamp"] = self.state()["server_time"]
        query = urllib.parse.urlencode(params)
        sig = hmac.new(DEFAULT_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"{self.base}{path}?{query}&signature={sig}", method=method,
                                     headers={"X-MBX-APIKEY": DEFAULT_API_KEY})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def spot_balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of a spot asset, read from the simulator itself."""
        for b in self.signed("/api/v3/account")["balances"]:
            if b["asset"] == asset:
                return D(b["free"]), D(b["locked"])
        return Decimal(0), Decimal(0)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def paper_server(tmp_path_factory) -> Paper:
    """One paper-mode ``binance-mcp serve`` for the session (no keys: it starts its own simulator)."""
    env = server_env(tmp_path_factory.mktemp("paper-state"))
    async with stdio_client(env) as client:
        status = await client.call_tool("binance_account_status", {})
        assert status.structured_content["connected"] is True, status.structured_content
        assert status.structured_content["exchange"] == "paper"
        yield Paper(client, status.structured_content["host"])


@pytest.fixture
def paper(paper_server: Paper) -> Paper:
    """The paper server with a fresh exchange: default balances (10000 USDT spot and futures), start prices."""
    paper_server.reset()
    yield paper_server
    paper_server.reset()

