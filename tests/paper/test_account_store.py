"""The paper account lasts: stored in the state directory, seen by the next server process and by a second one
running at the same time; ``binance-mcp paper reset`` and ``paper show``; the feed belongs to the account."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.e2e.conftest import ALLOW_ALL
from tests.helpers import D, paper_env
from tests.paper.conftest import Upstream, live_env, paper_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

BTC = "BTCUSDT"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def stored(state_dir) -> dict:
    out = cli("paper", "show", "--json", "--state-dir", str(state_dir))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def test_an_order_placed_by_one_server_process_is_cancelled_by_the_next(tmp_path):
    env = paper_env(tmp_path, ALLOW_ALL)
    async with paper_server(env) as (first, _):
        o = await first.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                         "quantity": "0.01", "price": "90000",
                                                         "newClientOrderId": "kept-1"})
        f = await first.call("binance_futures_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                            "quantity": "0.01"})
        await first.call("binance_futures_change_leverage", {"symbol": BTC, "leverage": 7})
        first_port = first.host
    # The first process has exited (as an MCP Inspector CLI call does): its paper exchange is gone.
    host, port = first_port.split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    # A new process opens the same account.
    async with paper_server(env) as (second, _):
        assert second.host != first_port  # another process, another paper exchange
        opened = await second.call("binance_spot_open_orders", {"symbol": BTC})
        assert [(x["orderId"], x["clientOrderId"]) for x in opened["orders"]] == [(o["orderId"], "kept-1")]
        assert second.spot_balance("USDT") == (D("9100"), D("900"))
        await second.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["orderId"]})
        row = second.signed("/api/v3/order", symbol=BTC, orderId=o["orderId"])
        assert row["status"] == "CANCELED" and second.spot_balance("USDT") == (D(10000), D(0))
        # Positions, leverage, trades and ids carry over too.
        pos = second.signed("/fapi/v2/positionRisk", symbol=BTC)[0]
        assert (D(pos["positionAmt"]), pos["leverage"]) == (D("0.01"), "7")
        assert [t["orderId"] for t in second.signed("/fapi/v1/userTrades", symbol=BTC)] == [f["orderId"]]
        again = await second.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                              "quantity": "0.01", "price": "90000"})
        assert again["orderId"] == o["orderId"] + 1  # ids go on from where the first process left them
    account = stored(tmp_path)
    assert [x["status"] for x in account["spot"]["orders"]] == ["CANCELED", "NEW"]


async def test_two_servers_at_once_share_the_account(tmp_path):
    env = paper_env(tmp_path, ALLOW_ALL)
    async with paper_server(env) as (a, _), paper_server(env) as (b, _):
        o = await a.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.01", "price": "90000"})
        seen = await b.call("binance_spot_open_orders", {"symbol": BTC})
        assert [x["orderId"] for x in seen["orders"]] == [o["orderId"]]
        await b.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["orderId"]})
        assert a.signed("/api/v3/order", symbol=BTC, orderId=o["orderId"])["status"] == "CANCELED"
        o2 = await b.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                      "quantity": "0.01", "price": "90000"})
        assert o2["orderId"] == o["orderId"] + 1  # one sequence of ids, whichever process places
        assert a.spot_balance("USDT") == (D("9100"), D("900"))


async def test_paper_reset_and_show(tmp_path):
    env = paper_env(tmp_path, ALLOW_ALL)
    async with paper_server(env) as (paper, _):
        await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.01", "price": "90000"})
        shown = cli("paper", "show", "--state-dir", str(tmp_path))
        assert shown.returncode == 0, shown.stderr
        assert "feed:     synthetic" in shown.stdout and "Spot open orders: 1" in shown.stdout
        assert "BTCUSDT BUY LIMIT 0.01 @ 90000" in shown.stdout and "USDT     free 9100  locked 900" in shown.stdout
        reset = cli("paper", "reset", "--balances", "USDT=500,BTC=1", "--state-dir", str(tmp_path))
        assert reset.returncode == 0 and "new paper account" in reset.stderr and reset.stdout == ""
        # The running server takes the new account on its next call.
        balances = {b["asset"]: b for b in (await paper.call("binance_spot_balances", {}))["balances"]}
        assert (D(balances["USDT"]["free"]), D(balances["BTC"]["free"])) == (D(500), D(1))
        assert (await paper.call("binance_spot_open_orders", {"symbol": BTC}))["orders"] == []
        assert D(paper.signed("/fapi/v2/balance")[0]["balance"]) == D(500)
    account = stored(tmp_path)
    assert account["feed"] == "synthetic" and account["spot"]["orders"] == []
    empty = cli("paper", "show", "--state-dir", str(tmp_path / "nothing"))
    assert empty.returncode == 1 and "no paper account" in empty.stderr
    bad = cli("paper", "reset", "--balances", "USDT=lots", "--state-dir", str(tmp_path))
    assert bad.returncode == 2 and "'lots' is not a number" in bad.stderr
    assert stored(tmp_path)["id"] == account["id"]  # a bad reset changes nothing


async def test_the_feed_belongs_to_the_account(upstream: Upstream, tmp_path):
    """A live account stays live: a setting that asks for the other feed is an error saying what to run."""
    out = cli("paper", "reset", "--feed", "live", "--upstream", upstream.base, "--state-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert stored(tmp_path)["upstream"] == {"spot": upstream.base + "/api", "futures": upstream.base + "/fapi"}
    # Without BINANCE_MCP_PAPER_FEED the stored account's feed is used (its upstream too).
    async with paper_server(paper_env(tmp_path, ALLOW_ALL)) as (paper, status):
        assert status["feed"] == f"live {upstream.host}"
    mismatch = paper_env(tmp_path, ALLOW_ALL, BINANCE_MCP_PAPER_FEED="synthetic")
    async with paper_server(mismatch, connected=False) as (paper, status):
        assert "feed" not in status and status["host"] == "127.0.0.1 (paper exchange not started)"
        assert "BINANCE_MCP_PAPER_FEED=synthetic" in status["error"], status
        text = await paper.error("binance_spot_balances", {})
        assert text.startswith("PAPER_ACCOUNT: ") and "uses the live " + upstream.host in text, text
        assert "binance-mcp paper reset --feed synthetic" in text, text
    async with paper_server(live_env(tmp_path, "http://127.0.0.1:9"), connected=False) as (paper, status):
        assert "BINANCE_MCP_PAPER_UPSTREAM points at http://127.0.0.1:9" in status["error"], status
    out = cli("paper", "reset", "--feed", "synthetic", "--state-dir", str(tmp_path))
    assert out.returncode == 0 and stored(tmp_path)["feed"] == "synthetic" and stored(tmp_path)["upstream"] is None
