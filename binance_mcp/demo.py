"""``binance-mcp demo``: a short, real session. It starts ``binance-mcp serve`` in paper mode as a subprocess,
talks to it over stdio as an MCP client (like Claude Desktop) would, and shows a person what happened."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

DEMO_POLICY = """\
# The demo's policy: spot orders on BTC and ETH up to 500 USD (approval above 150 USD), at most
# 3 orders a minute; leverage up to 10x; futures positions up to 1,000 USD; cancels allowed.
version: 1
default: deny
classes:
  read: allow
  destructive: allow
tools:
  binance_spot_place_order:
    rate_limit: {max: 3, window: 60}
    approval_above: {notional_usd: 150}
    limits:
      symbols: [BTCUSDT, ETHUSDT]
      max_notional_usd: 500
      daily_notional_usd: 2000
  binance_futures_change_leverage:
    limits: {max_leverage: 10}
  binance_futures_place_order:
    limits: {max_position_notional_usd: 1000}
  binance_futures_close_position: allow
"""

Out = Callable[[str], None]

SECRET_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_SECRET_KEY", "BINANCE_MCP_MODE", "BINANCE_TESTNET",
               "BINANCE_MCP_BASE_URL", "BINANCE_MCP_POLICY")


def _money(value: Any) -> str:
    d = Decimal(str(value))
    return f"{d:,.8f}".rstrip("0").rstrip(".")


class DemoSession:
    def __init__(self, client, out: Out) -> None:
        self.client = client
        self.out = out
        self.step = 0

    async def call(self, title: str, tool: str, args: dict | None = None) -> tuple[bool, dict | str]:
        self.step += 1
        self.out(f"\n{self.step}. {title}")
        self.out(f"   -> {tool} {args or {}}")
        result = await self.client.call_tool(tool, args or {}, raise_on_error=False)
        if result.is_error:
            text = result.content[0].text if result.content else "(no text)"
            self.out(f"   <- refused: {text}")
            return False, text
        return True, result.structured_content or {}


def _approval_id(text: object) -> str | None:
    import re

    m = re.search(r"approvals approve ([a-z0-9]{8})", str(text))
    return m.group(1) if m else None


async def _audit_trail(env: dict[str, str], out: Out) -> None:
    out("\nThe audit trail of this session (binance-mcp audit):")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "binance_mcp", "audit", "--limit", "40",
                                                env=env, cwd=env["BINANCE_MCP_STATE_DIR"], stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await proc.communicate()
    for line in (stdout or stderr).decode().splitlines():
        out("   " + line)


async def _session(env: dict[str, str], out: Out) -> int:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(command=sys.executable, args=["-m", "binance_mcp", "serve"], env=env,
                               cwd=env["BINANCE_MCP_STATE_DIR"])
    started = time.monotonic()
    async with Client(transport, mode="legacy") as client:
        tools = await client.list_tools()
        out(f"\nConnected over stdio to binance-mcp serve (paper mode): {len(tools)} tools listed in "
             f"{time.monotonic() - started:.1f} s.")
        s = DemoSession(client, out)

        ok, bal = await s.call("Spot balances", "binance_spot_balances")
        if ok:
            for b in bal["balances"]:
                out(f"   <- {b['asset']}: free {_money(b['free'])}, locked {_money(b['locked'])}")

        ok, px = await s.call("BTC price", "binance_spot_price", {"symbol": "BTCUSDT"})
        price = Decimal(px["prices"][0]["price"]) if ok else Decimal("97000")
        out(f"   <- BTCUSDT last price {_money(price)} USDT")

        limit_price = (price * Decimal("0.95")).quantize(Decimal("0.01"))
        ok, order = await s.call(f"A small limit buy 5 % below the market: 0.001 BTC at {limit_price}",
                                 "binance_spot_place_order",
                                 {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                                  "price": str(limit_price)})
        order_id = order.get("orderId") if ok else None
        if ok:
            out(f"   <- order {order_id} {order['status']}: it rests on the book and locks "
                 f"{_money(limit_price * Decimal('0.001'))} USDT")

        ok, opened = await s.call("Open orders", "binance_spot_open_orders", {"symbol": "BTCUSDT"})
        if ok:
            for o in opened["orders"]:
                out(f"   <- {o['orderId']}: {o['side']} {o['origQty']} @ {o['price']} ({o['status']})")

        if order_id:
            ok, cancelled = await s.call("Cancel it", "binance_spot_cancel_order",
                                         {"symbol": "BTCUSDT", "orderId": order_id})
            if ok:
                out(f"   <- order {cancelled['orderId']} CANCELED ({cancelled['executedQty']} had filled); the USDT is "
                     "free again")

        await s.call("Over the policy's 500 USD per-order limit: buy 0.01 BTC (~970 USD)",
                     "binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                  "quantity": "0.01"})
        await s.call("A symbol the policy does not allow: SOLUSDT", "binance_spot_place_order",
                     {"symbol": "SOLUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
        gated = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002",
                 "price": str((price * Decimal("0.97")).quantize(Decimal("0.01")))}
        ok, text = await s.call("Above the 150 USD approval threshold: a 0.002 BTC limit buy (counted at the ask, "
                                "~194 USD)", "binance_spot_place_order", gated)
        approval_id = _approval_id(text) if not ok else None
        if approval_id:
            out(f"\n   A human approves it out of band, in another terminal, with the command the refusal carries.\n"
                f"   It shows the order and asks y/N; the demo answers for them with --yes:\n"
                f"   $ binance-mcp approvals approve {approval_id} --yes")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "binance_mcp", "approvals", "approve", approval_id, "--yes", env=env,
                cwd=env["BINANCE_MCP_STATE_DIR"],
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
            stdout, stderr = await proc.communicate()
            for line in (stdout or stderr).decode().strip().splitlines():
                out("   " + line)
            ok, order2 = await s.call("The agent repeats the same call: the approval is consumed, the order runs once",
                                      "binance_spot_place_order", gated)
            if ok:
                out(f"   <- order {order2['orderId']} {order2['status']}")
                ok, c = await s.call("Tidy up: cancel all BTCUSDT orders", "binance_spot_cancel_all_orders",
                                     {"symbol": "BTCUSDT"})
                if ok:
                    out(f"   <- cancelled {len(c['cancelled'])} order(s)")
        small = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                 "price": str(Decimal("3000.00"))}
        ok, o = await s.call("A third order this minute (the policy allows 3 a minute)", "binance_spot_place_order",
                             small)
        if ok:
            out(f"   <- order {o['orderId']} {o['status']}")
        await s.call("One order too many this minute", "binance_spot_place_order", small)
        ok, c = await s.call("Cancel the ETHUSDT orders", "binance_spot_cancel_all_orders", {"symbol": "ETHUSDT"})
        if ok:
            out(f"   <- cancelled {len(c['cancelled'])} order(s)")
        ok, status = await s.call("What may the agent still do? (binance_policy_status)", "binance_policy_status")
        if ok:
            for d in status["daily"]:
                out(f"   <- {d['rule']}: used {_money(d['used_usd'])} of {_money(d['cap_usd'])} USD today")
            for r in status["rate_limits"]:
                out(f"   <- {r['rule']}: {r['used']} of {r['max']} calls used, next in {r['wait_s']} s")

        ok, lev = await s.call("Futures leverage on BTCUSDT to 5x", "binance_futures_change_leverage",
                               {"symbol": "BTCUSDT", "leverage": 5})
        if ok:
            out(f"   <- leverage {lev['leverage']}x (the exchange's bracket allows up to "
                f"{_money(lev['maxNotionalValue'])} USDT at this leverage; this policy caps a position at 1,000 USD)")

        ok, fut = await s.call("Open a small long: market buy 0.002 BTCUSDT perpetual", "binance_futures_place_order",
                               {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"})
        if ok:
            out(f"   <- {fut['status']}: bought {fut.get('executedQty', 0)} at {_money(fut.get('avgPrice', 0))}")

        ok, pos = await s.call("Futures positions", "binance_futures_positions")
        if ok:
            for p in pos["positions"]:
                amt = Decimal(p["positionAmt"])
                liq = Decimal(str(p.get("liquidationPrice") or 0))
                where = (f"liquidation at {_money(p['liquidationPrice'])}" if liq > 0
                         else "no liquidation price (the wallet covers the whole position)")
                out(f"   <- {p['symbol']} {'LONG' if amt > 0 else 'SHORT'} {abs(amt)} entry {_money(p['entryPrice'])}"
                    f" mark {_money(p['markPrice'])} PnL {_money(p['unrealizedProfit'])}, {where},"
                    f" at {p.get('leverage')}x {p.get('marginType')}")

        ok, closed = await s.call("Close the position at market", "binance_futures_close_position",
                                  {"symbol": "BTCUSDT"})
        if ok:
            for o in closed["closed"]:
                out(f"   <- {o['side']} {o['executedQty']} reduce-only at {_money(o.get('avgPrice', 0))}: {o['status']}")

        ok, acct = await s.call("Futures wallet after the round trip (fees and PnL included)",
                                "binance_portfolio_account")
        if ok:
            out(f"   <- wallet {_money(acct['totalWalletBalance'])} USDT, available "
                 f"{_money(acct['availableBalance'])} USDT")

        ok, status = await s.call("Connection diagnostics", "binance_account_status")
        if ok:
            out(f"   <- connected={status['connected']} exchange={status['exchange']} host={status['host']} "
                 f"clock drift {status.get('clockDriftMs')} ms")
    await _audit_trail(env, out)
    out(f"\nDone in {time.monotonic() - started:.1f} s. This was the embedded paper exchange: no account, no "
         "network, no real money.")
    return 0


def child_env(state: str) -> dict[str, str]:
    """The environment of the demo's server and commands: no keys, no mode, no policy of the user's; the demo's
    state directory. They run in that directory, so that ``python -m binance_mcp`` imports the package this demo
    runs (not a checkout that happens to be the working directory), through PYTHONPATH when only that finds it."""
    from binance_mcp.invocation import PACKAGE_ROOT, importable_without_help

    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env["BINANCE_MCP_STATE_DIR"] = state
    if not importable_without_help(sys.executable):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_demo(out: Out) -> int:
    """Run the demo, writing what a person reads through ``out`` (the CLI passes a stdout printer)."""
    with tempfile.TemporaryDirectory(prefix="binance-mcp-demo-") as state:
        env = child_env(state)
        policy = os.path.join(state, "demo-policy.yaml")
        with open(policy, "w", encoding="utf-8") as fh:
            fh.write(DEMO_POLICY)
        env["BINANCE_MCP_POLICY"] = policy
        out("binance-mcp demo: a real MCP session against the paper exchange, under this policy:\n")
        for line in DEMO_POLICY.splitlines():
            out("   " + line)
        try:
            return asyncio.run(_session(env, out))
        except Exception as exc:  # noqa: BLE001 - a demo reports what broke and exits non-zero
            print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
