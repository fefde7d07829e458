"""Four servers on one PostgreSQL and one exchange account: two over stdio and two HTTP services, each with its
own state directory (as on four hosts), all on one simulator account. Together they never pass the account's daily
cap or max_open_orders (checked on the simulator's own state), an approval granted once runs once through
whichever server gets it first, and a protection tripped through one server denies on all of them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from contextlib import AsyncExitStack, ExitStack
from decimal import Decimal

import pytest
import pytest_asyncio

from binance_mcp.policy.audit import read
from binance_mcp.policy.state import StateStore
from tests.helpers import clean_env
from tests.policy.account import acct, binance, exchange, serve_on  # noqa: F401 - fixtures: the account
from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, limit_buy, write_policy
from tests.service.helpers import add_agent, http_client, running_service

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER, CANCEL_ALL = "binance_spot_place_order", "binance_spot_cancel_all_orders"
CAP, OPEN = Decimal(1200), 5  # 12 orders of 97.00001 USD fit under the cap; 5 may rest open
POLICY = f"""\
version: 1
default: allow
account:
  daily_notional_usd: {CAP}{{protections}}
tools:
  binance_spot_place_order:
    limits: {{{{max_open_orders: {OPEN}}}}}
  binance_spot_cancel_all_orders:
    action: require_approval
"""
MARKET = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}  # 97.00001 USD at the ask


class Four:
    def __init__(self, servers: list, state_dirs: list, envs: list, url: str, policy) -> None:
        self.servers, self.state_dirs, self.envs, self.url, self.policy = servers, state_dirs, envs, url, policy

    def store(self) -> StateStore:
        return StateStore(self.state_dirs[0] / "state.db", time.time, url=self.url)

    def account(self) -> str:
        from binance_mcp.server import account_id
        from binance_mcp.settings import load_settings

        return account_id(load_settings(self.envs[0]))


class Http:
    """An MCP client over Streamable HTTP, with the ``call`` the stdio servers' Paper has."""

    def __init__(self, client) -> None:
        self.client = client

    async def call(self, name: str, args: dict | None = None):
        return await self.client.call_tool(name, args or {}, raise_on_error=False)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def four(exchange, pg_server, tmp_path_factory):  # noqa: F811
    exchange.control("reset", {})
    # one account's request weight for four servers' facts (the order books, open orders: about 20 per order)
    exchange.control("limits", {"reset_counters": True, "spot_weight_per_minute": 100000})
    root = tmp_path_factory.mktemp("four")
    url = pg_server.new_database()
    policy = write_policy(root / "policy.yaml", POLICY.format(protections=""))
    dirs = [root / f"host{i}" for i in range(4)]
    keys = dict(BINANCE_API_KEY=exchange.api_key, BINANCE_API_SECRET=exchange.api_secret,
                BINANCE_MCP_BASE_URL=exchange.base_url, BINANCE_MCP_MODE="testnet", BINANCE_MCP_STATE_URL=url)
    envs = [clean_env(BINANCE_MCP_STATE_DIR=str(d), BINANCE_MCP_POLICY=str(policy), **keys) for d in dirs]
    token = add_agent(envs[2], "desk")  # added on one host: the other service knows it (the agents table)
    with ExitStack() as services:
        urls = [services.enter_context(running_service(envs[i], root / f"service{i}.log")).url for i in (2, 3)]
        async with AsyncExitStack() as stack:
            stdio = await asyncio.gather(*(stack.enter_async_context(
                serve_on(exchange, dirs[i], policy, BINANCE_MCP_MODE="testnet", BINANCE_MCP_STATE_URL=url))
                for i in (0, 1)))
            http = [Http(await stack.enter_async_context(http_client(u, token, timeout=60))) for u in urls]
            yield Four([*stdio, *http], dirs, envs, url, policy)


def code(result) -> str:
    return result.content[0].text.split(":")[0] if result.is_error else "OK"


async def test_two_hundred_orders_at_once_never_pass_the_account_cap_or_max_open_orders(four, exchange):  # noqa: F811
    since = exchange.control("state")["last_seq"]
    calls = [s.call(ORDER, limit_buy() if i % 2 else MARKET) for i in range(50) for s in four.servers]
    results = await asyncio.gather(*calls)
    assert len(results) == 200
    codes = [code(r) for r in results]
    assert set(codes) <= {"OK", "OPEN_ORDERS_OVER_LIMIT", "DAILY_NOTIONAL_OVER_LIMIT"}, [
        r.content[0].text[:300] for r in results if code(r) not in ("OK", "OPEN_ORDERS_OVER_LIMIT")]
    # What the exchange holds: the orders it received, what the filled ones cost, the ones resting on the book.
    posted = [e for e in exchange.control(f"requests?since={since}") if e["path"] == "/api/v3/order"]
    orders = list(exchange.sim.spot.orders.values())
    open_now = [o for o in orders if o.status == "NEW"]
    spent = sum((o.cum_quote for o in orders), Decimal(0)) + sum((o.orig_qty * o.price for o in open_now), Decimal(0))
    assert len(open_now) <= OPEN
    assert len(posted) == len(orders) == codes.count("OK") <= int(CAP / LIMIT_NOTIONAL)
    assert spent <= CAP
    # What the store counted: every allowed order (each at least 97.00001 USD, more once market buys lift the
    # ask), under the cap; nothing left in flight once every call was answered.
    store = four.store()
    used = store.used(["account"])["account"]
    assert len(posted) * LIMIT_NOTIONAL <= used <= CAP
    assert store.in_flight(four.account()) == []
    store.close()
    # The audit: each host's file has its own 50 calls; the store's table has all 200, read from any host.
    # (an allowed call has two records: "sending", written before it is sent, and its outcome)
    assert len({r["call_id"] for r in read(four.state_dirs[1] / "audit.jsonl") if r.get("tool") == ORDER}) == 50
    done = subprocess.run([sys.executable, "-m", "binance_mcp", "audit", "--json", "--tool", ORDER, "--limit", "500"],
                          env=four.envs[3], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = [r for r in map(json.loads, done.stdout.splitlines()) if r["outcome"]["status"] != "sending"]
    assert len({r["call_id"] for r in table}) == len(table) == 200
    assert sorted(r["decision"]["code"] for r in table) == sorted(
        c if c != "OK" else "ALLOWED" for c in codes)


async def test_an_approval_granted_through_one_server_runs_once_through_any(four, exchange):  # noqa: F811
    svc_a, svc_b = four.servers[2], four.servers[3]
    asked = await svc_a.call(CANCEL_ALL, {"symbol": "BTCUSDT"})
    assert code(asked) == "APPROVAL_REQUIRED"
    approval = re.search(r"Approval id (\w+)", asked.content[0].text).group(1)
    done = subprocess.run([sys.executable, "-m", "binance_mcp", "approvals", "approve", approval, "--yes"],
                          env=four.envs[3], capture_output=True, text=True, timeout=60)  # on another host
    assert done.returncode == 0, done.stderr
    since = exchange.control("state")["last_seq"]
    results = await asyncio.gather(*(s.call(CANCEL_ALL, {"symbol": "BTCUSDT"}) for s in (svc_a, svc_b) * 3))
    assert sorted(code(r) for r in results) == ["APPROVAL_REQUIRED"] * 5 + ["OK"]
    cancels = [e for e in exchange.control(f"requests?since={since}") if e["path"] == "/api/v3/openOrders"]
    assert len(cancels) == 1
    from binance_mcp.policy.approvals import ApprovalStore

    store = four.store()
    assert ApprovalStore(store, store.clock).get(approval).status == "consumed"
    store.close()


async def test_a_protection_tripped_through_one_server_denies_on_all(four, exchange, binance):  # noqa: F811
    write_policy(four.policy, POLICY.format(protections="\n  protections: {max_daily_loss_usd: 50}"))
    first, second = four.servers[0], four.servers[1]
    status = (await first.call("binance_policy_status")).structured_content  # the day's first equity sample
    assert [p["tripped"] for p in status["protections"]] == [False], status
    usdt = Decimal(binance.get_asset_balance("USDT")["free"])
    exchange.control("balances", {"spot": {"USDT": str(usdt - 500)}})  # a loss of 500 USD...
    status = (await second.call("binance_policy_status")).structured_content  # ...sampled by another server
    assert [p["tripped"] for p in status["protections"]] == [True], status
    exchange.control("balances", {"spot": {"USDT": str(usdt)}})  # and won back: the trip stays for the day
    since = exchange.control("state")["last_seq"]
    for server in (four.servers[0], *four.servers[2:]):  # the first saw no loss itself; the services none
        assert code(await server.call(ORDER, MARKET)) == "DAILY_LOSS_LIMIT"
    assert [e for e in exchange.control(f"requests?since={since}") if e["path"] == "/api/v3/order"] == []
