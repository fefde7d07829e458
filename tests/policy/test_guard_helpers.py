"""Helpers for the guard and approval tests (no tests here).

A paper-mode ``binance-mcp serve`` runs as a subprocess and is spoken to over stdio by fastmcp's client
(legacy protocol era, as Claude Desktop and most clients speak today). Its embedded simulator is found
through ``binance_account_status``'s ``host`` and observed through the ``/_sim/`` controls: what reached
the exchange is read from the simulator, never from the server's own answer. The audit log is read
from the state directory. The pieces other test areas use too live in ``tests/helpers.py``.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from fastmcp import Client

from tests.helpers import (
    SERVE,
    D,
    PaperSimulator,
    clean_env,
    http_json,
    paper_env,
    read_audit,
    stdio_client,
    write_policy,
)

# Imported from here by the guard and approval tests (and by tests being written against this module).
__all__ = ["SERVE", "D", "Paper", "cli", "http_json", "limit_buy", "read_audit", "serve", "server_env", "write_policy"]


def server_env(state_dir: Path, policy: Path, **extra: str) -> dict[str, str]:
    """Our environment minus every BINANCE_* variable (no keys: paper mode), plus the test settings."""
    return paper_env(state_dir, policy, **{"FASTMCP_SHOW_SERVER_BANNER": "false", **extra})


class Paper(PaperSimulator):
    """A running server: MCP calls, its simulator and its audit log."""

    def __init__(self, client: Client, host: str, state_dir: Path, policy: Path) -> None:
        super().__init__(host)
        self.client, self.state_dir, self.policy = client, Path(state_dir), policy

    # -- MCP -------------------------------------------------------------------------------------
    async def call(self, name: str, args: dict | None = None):
        return await self.client.call_tool(name, args or {}, raise_on_error=False)

    async def ok(self, name: str, args: dict | None = None) -> dict:
        r = await self.call(name, args)
        assert not r.is_error, f"{name} failed: {r.content[0].text}"
        return r.structured_content

    async def error(self, name: str, args: dict | None = None) -> str:
        """A call that must fail (any code): its text."""
        r = await self.call(name, args)
        assert r.is_error, f"{name} should have failed, got {r.content[0].text[:300]}"
        return r.content[0].text

    async def denied(self, name: str, args: dict | None, code: str) -> str:
        """A call that must be refused with ``code``: the text starts with the code and nothing reached the
        exchange."""
        before = self.state()
        r = await self.call(name, args)
        after = self.state()
        text = r.content[0].text
        assert r.is_error, f"{name} should have been denied with {code}, got {text[:300]}"
        assert text.startswith(f"{code}: "), text
        assert after["order_requests"] == before["order_requests"], (before, after)
        assert after["orders"] == before["orders"], (before, after)
        return text

    async def status(self) -> dict:
        return await self.ok("binance_policy_status")

    async def daily_used(self, rule: str = "tools.binance_spot_place_order.limits.daily_notional_usd") -> Decimal:
        for row in (await self.status())["daily"]:
            if row["rule"] == rule:
                return D(row["used_usd"])
        raise AssertionError(f"no daily row {rule}")

    async def tool_names(self) -> set[str]:
        return {t.name for t in await self.client.list_tools()}

    # -- the audit log ---------------------------------------------------------------------------
    def audit(self) -> list[dict]:
        return read_audit(self.state_dir)

    def calls(self, tool: str | None = None) -> list[dict]:
        """Each call's final record (a call that trades also has an earlier "sending" record)."""
        return [r for r in self.audit() if "call_id" in r and (tool is None or r["tool"] == tool)
                and r.get("outcome", {}).get("status") != "sending"]

    def sending(self) -> list[dict]:
        return [r for r in self.audit() if r.get("outcome", {}).get("status") == "sending"]

    def events(self, event: str) -> list[dict]:
        return [r for r in self.audit() if r.get("event") == event]


@asynccontextmanager
async def serve(state_dir: Path, policy: Path, **env: str):
    """``binance-mcp serve`` as a subprocess over stdio, in paper mode with frozen prices."""
    async with stdio_client(server_env(state_dir, policy, **env), timeout=60) as client:
        status = await client.call_tool("binance_account_status", {})
        assert status.structured_content["exchange"] == "paper", status.structured_content
        yield Paper(client, status.structured_content["host"], state_dir, policy)


async def cli(state_dir: Path, *args: str) -> tuple[int, str, str]:
    """``binance-mcp <args>`` as a separate process on the same state directory: (exit code, stdout, stderr)."""
    env = clean_env(BINANCE_MCP_STATE_DIR=str(state_dir))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "binance_mcp", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


LIMIT_NOTIONAL = Decimal("97.00001")  # limit_buy() at the start prices: 0.001 x the 97000.01 ask


def limit_buy(qty: str = "0.001", price: str = "90000", symbol: str = "BTCUSDT") -> dict:
    """A resting LIMIT BUY (below the 97000 start price). It counts at the best ask (97000.01 at the start), the
    higher of its price and where it could fill now: a BUY of 0.001 counts 97.00001 USD (LIMIT_NOTIONAL)."""
    return {"symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price}
