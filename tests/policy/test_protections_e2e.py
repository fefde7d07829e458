"""Account protections end to end: ``binance-mcp serve`` trading a standalone simulator's account over stdio, with
prices moved by the simulator's controls. What counts is what the exchange holds (its orders, positions, trades)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal

import pytest

from binance_mcp.policy.protections import EQUITY_REUSE_S
from tests.policy.account import codes, futures_position, order_posts, serve_on
from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, D, limit_buy, read_audit, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

FUT = "binance_futures_place_order"
SPOT = "binance_spot_place_order"
CLOSE = "binance_futures_close_position"


def mark_of(binance) -> Decimal:
    return D(binance.futures_mark_price(symbol="BTCUSDT")["markPrice"])


def buy(qty: str = "0.05") -> dict:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": qty}


def sell_reduce(qty: str = "0.05") -> dict:
    return {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": qty, "reduceOnly": True}


def move_futures(acct, price: Decimal) -> None:
    acct.control("price", {"market": "futures", "symbol": "BTCUSDT", "price": str(price), "mark": str(price)})


def protections(state_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "protections", "--state-dir", str(state_dir), *args],
                          capture_output=True, text=True, timeout=60)


async def test_a_daily_loss_trips_denies_new_exposure_lets_the_close_through_and_outlives_a_restart(
        acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account:
          protections: {max_daily_loss_usd: 300}
        """)
    state = tmp_path / "state"
    m0 = mark_of(binance)
    async with serve_on(acct, state, policy) as server:
        await server.ok(FUT, buy())  # samples the day's first equity (20,000 USD), then opens about 4,850 USD
        assert futures_position(binance) == D("0.05")
        move_futures(acct, (m0 * D("0.93")).quantize(D("0.1")))  # the long loses about 340 USD
        await asyncio.sleep(EQUITY_REUSE_S + 0.2)  # a sample this young is reused (a burst costs one account read)
        text = await server.denied(FUT, buy("0.002"), "DAILY_LOSS_LIMIT")
        assert "over the 300 USD of account.protections.max_daily_loss_usd" in text, text
        assert "binance-mcp protections reset" in text
        await server.denied(SPOT, buy("0.002"), "DAILY_LOSS_LIMIT")  # spot too: the account is one
        status = await server.status()
        view = next(v for v in status["protections"] if v["rule"].endswith("max_daily_loss_usd"))
        assert view["tripped"] is True and "lost today" in view["value"]
        # Reducing is never stopped by a protection: the close reaches the exchange and flattens the position.
        await server.ok(FUT, sell_reduce())
        assert futures_position(binance) == 0
    # A deposit brings equity back over the day's start; the trip is stored and still holds after a restart.
    acct.control("balances", {"futures": {"USDT": "11000"}})
    async with serve_on(acct, state, policy) as server:
        await server.denied(FUT, buy("0.002"), "DAILY_LOSS_LIMIT")
    shown = protections(state, "show")
    assert shown.returncode == 0 and "TRIPPED max_daily_loss_usd (DAILY_LOSS_LIMIT)" in shown.stdout, shown
    reset = protections(state, "reset")
    assert reset.returncode == 0 and "1 trip(s) lifted" in reset.stdout, reset
    async with serve_on(acct, state, policy) as server:
        await server.ok(FUT, buy("0.002"))
    assert futures_position(binance) == D("0.002")
    events = [r.get("event") for r in read_audit(state)]
    assert "protections_reset" in events


async def test_concurrent_orders_never_take_gross_exposure_over_its_cap(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account:
          protections: {max_gross_exposure_usd: 1000}
        """)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        results = await asyncio.gather(*(server.call(SPOT, limit_buy()) for _ in range(20)))
    refused = codes(results)
    assert set(refused) == {"EXPOSURE_OVER_LIMIT"}, refused
    # The exchange holds exactly the orders that fit: 10 x 97.00001 USD under 1,000 USD, an 11th would not.
    open_orders = binance.get_open_orders(symbol="BTCUSDT")
    assert len(open_orders) == 20 - len(refused) == 10
    ask = D(binance.get_order_book(symbol="BTCUSDT", limit=5)["asks"][0][0])
    assert sum(D(o["origQty"]) * max(D(o["price"]), ask) for o in open_orders) <= 1000
    assert LIMIT_NOTIONAL * 11 > 1000


async def test_losing_closes_pause_new_exposure_and_a_close_cools_its_symbol(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account:
          protections:
            loss_streak: {losses: 2, window: 3600, cooldown: 1800}
        """)
    m = mark_of(binance)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        for _ in range(2):  # open, the market falls 1 %, close at a loss
            await server.ok(FUT, buy("0.01"))
            m = (m * D("0.99")).quantize(D("0.1"))
            move_futures(acct, m)
            await server.ok(FUT, sell_reduce("0.01"))
        pnl = [D(t["realizedPnl"]) for t in binance.futures_account_trades(symbol="BTCUSDT")]
        assert sum(1 for p in pnl if p < 0) == 2  # the exchange's own history: two losing closes
        text = await server.denied(FUT, buy("0.01"), "LOSS_STREAK_COOLDOWN")
        assert "2 losing closes within 3600 s" in text, text
        await server.denied(SPOT, buy("0.002"), "LOSS_STREAK_COOLDOWN")
        assert futures_position(binance) == 0
        # A human's reset: the losing closes before it no longer count.
        assert protections(tmp_path / "state", "reset").returncode == 0
        await server.ok(FUT, buy("0.01"))
    assert futures_position(binance) == D("0.01")

    acct.control("reset", {})  # a fresh account: the closes above would cool BTCUSDT already
    write_policy(policy, """\
        version: 1
        default: allow
        account:
          protections: {cooldown_after_close: 300}
        """)
    async with serve_on(acct, tmp_path / "state2", policy) as server:
        await server.ok(FUT, buy("0.01"))
        await server.ok(CLOSE, {"symbol": "BTCUSDT"})
        assert futures_position(binance) == 0
        text = await server.denied(FUT, buy("0.01"), "COOLDOWN")
        assert "BTCUSDT was just closed" in text, text
        # Another symbol is not cooling down.
        await server.ok(FUT, {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"})


async def test_an_account_that_cannot_be_read_denies_new_exposure_but_not_cancels(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account:
          protections: {max_daily_loss_usd: 300, max_drawdown_pct: 5}
        """)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        placed = await server.ok(SPOT, limit_buy())
        acct.control("faults", {"kind": "error_5xx", "path": "/fapi/v2/account", "count": 1000, "status": 503})
        await asyncio.sleep(EQUITY_REUSE_S + 0.2)  # past the reuse of the last good sample
        seq = acct.control("state")["last_seq"]
        text = await server.error(SPOT, limit_buy())
        assert text.startswith("POLICY_ERROR: "), text
        assert order_posts(acct, seq, "/api/v3/order") == []
        await server.ok("binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
        acct.control("faults", method="DELETE")  # the fixture resets the account, not its faults
    assert binance.get_open_orders(symbol="BTCUSDT") == []


async def test_a_symbol_the_exchange_does_not_list_is_unknown_symbol_under_a_policy_that_prices_it(
        acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order: {limits: {max_notional_usd: 100}}
          binance_futures_place_order: {limits: {max_position_notional_usd: 100}}
        account:
          protections: {max_gross_exposure_usd: 5000}
        """)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        for tool, symbol in ((SPOT, "NOPEUSDT"), (FUT, "XRPUSDT")):
            text = await server.denied(tool, {**buy("1"), "symbol": symbol}, "UNKNOWN_SYMBOL")
            assert "binance_exchange_info" in text, text


async def test_a_drawdown_from_the_days_peak_trips(acct, binance, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", """\
        version: 1
        default: allow
        account:
          protections: {max_drawdown_pct: 1}
        """)
    m0 = mark_of(binance)
    async with serve_on(acct, tmp_path / "state", policy) as server:
        await server.ok(FUT, buy())  # 0.05 BTC; equity 20,000 USD
        move_futures(acct, (m0 * D("1.04")).quantize(D("0.1")))  # +194 USD: a new peak of the day
        await asyncio.sleep(EQUITY_REUSE_S + 0.2)
        await server.ok(FUT, buy("0.002"))  # samples the peak
        move_futures(acct, m0)  # back down: about 0.96 % below the peak, within 1 %
        await asyncio.sleep(EQUITY_REUSE_S + 0.2)
        await server.ok(FUT, buy("0.002"))
        move_futures(acct, (m0 * D("0.995")).quantize(D("0.1")))  # now more than 1 % below it
        await asyncio.sleep(EQUITY_REUSE_S + 0.2)
        text = await server.denied(FUT, buy("0.002"), "DRAWDOWN_LIMIT")
        assert "from today's highest sample" in text and "over the 1 % of" in text, text
        await server.ok(CLOSE, {"symbol": "BTCUSDT"})  # closing is never stopped
        assert futures_position(binance) == 0
        assert protections(tmp_path / "state", "reset").returncode == 0
        await server.ok(FUT, buy("0.002"))  # the day starts again from this sample
    assert futures_position(binance) == D("0.002")
