"""End-to-end fixtures: ``binance-mcp serve`` as a real subprocess, spoken to over stdio by fastmcp's client.

One paper-mode server serves the whole session (start-up costs about a second). Its embedded simulator is
found through ``binance_account_status``'s ``host`` and driven with the ``/_sim/`` controls over plain HTTP;
the same simulator's public and signed REST endpoints give the tests their own view of the exchange, so
results are checked against values the test computed, not against what the server says about itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastmcp import Client

from tests.helpers import D, PaperSimulator, paper_env, stdio_client

__all__ = ["D", "Paper", "assert_no_floats", "server_env", "stdio_client"]

HERE = Path(__file__).parent
EXPONENT = re.compile(r"-?[0-9.]+[eE][-+]?[0-9]+")
ALLOW_ALL = HERE / "allow-all.yaml"


def server_env(state_dir: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a test server: ours minus every BINANCE_* variable, plus the test settings."""
    return paper_env(state_dir, ALLOW_ALL, **extra)


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


class Paper(PaperSimulator):
    """The session's paper server: MCP calls plus direct access to its simulator."""

    def __init__(self, client: Client, host: str) -> None:
        self.client = client
        super().__init__(host)

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

    async def unknown_symbol(self, name: str, args: dict, *words: str) -> str:
        """A symbol the exchange does not list: UNKNOWN_SYMBOL from every tool, with the hint to
        binance_exchange_info, and no mention of the paper exchange's temporary port. Either the exchange said so
        (Binance's -1121, quoted with its code) or the server's own check on exchangeInfo did (no request was
        refused); nothing was traded."""
        before = self.state()
        text = await self.error(name, args)
        after = self.state()
        assert text.startswith("UNKNOWN_SYMBOL: "), text
        assert "binance_exchange_info" in text, text
        assert "127.0.0.1:" not in text and self.host not in text, text
        for word in words:
            assert word in text, f"{word!r} not in {text!r}"
        log = self.requests(before["last_seq"])
        if "(Binance code -1121)" in text:
            assert -1121 in [e["code"] for e in log], log  # the exchange really answered with that code
        else:
            assert "is not a" in text and all(e.get("code") in (None, 0) for e in log), (text, log)
        assert after["orders"] == before["orders"], (before, after)
        return text

    # -- the simulator --------------------------------------------------------------------------
    def sim(self, path: str, body: dict | None = None, method: str | None = None) -> Any:
        answer = super().sim(path, body, method)
        assert not (isinstance(answer, dict) and "error" in answer), answer  # a control the test got wrong
        return answer


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

