"""The protections' figures from Binance's own answers (equity, gross exposure, closes, streaks, cooldowns), their
state in the store (day's first and peak, trips, resets) on an injected clock, and the policy keys' checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_mcp.policy.engine import Call, Facts
from binance_mcp.policy.facts import FactError, pending_entry, with_pending
from binance_mcp.policy.loader import PolicyLoadError, parse_text
from binance_mcp.policy.protections import (
    Close,
    close_left,
    equity_checks,
    equity_of,
    futures_closes,
    gross_exposure,
    spot_closes,
    streak_left,
)
from binance_mcp.policy.state import StateStore
from tests.fakeclock import FakeClock

D = Decimal
PRICES = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000"), "BNBUSDT": D("600"), "ETHBTC": D("0.04")}


def test_equity_values_every_asset_it_can_and_lists_the_rest():
    spot = {"balances": [{"asset": "USDT", "free": "1000", "locked": "500"},
                         {"asset": "BTC", "free": "0.01", "locked": "0.01"},
                         {"asset": "LDBTC", "free": "1", "locked": "0"},  # an Earn token: no BTC-USD path
                         {"asset": "DUST", "free": "0", "locked": "0"}]}
    futures = {"assets": [{"asset": "USDT", "walletBalance": "2000", "unrealizedProfit": "-150.5"},
                          {"asset": "BNB", "walletBalance": "1", "unrealizedProfit": "0"},
                          {"asset": "XYZ", "walletBalance": "3", "unrealizedProfit": "0"}]}
    eq = equity_of(spot, futures, PRICES, at=1.0)
    assert eq.usd == D("1500") + D("0.02") * 100000 + D("1849.5") + 600
    assert eq.unpriced == ("LDBTC", "XYZ (futures)")


def test_gross_exposure_counts_positions_holdings_and_orders_that_add_at_their_worst_price():
    spot = {"balances": [{"asset": "USDT", "free": "9000", "locked": "1000"},
                         {"asset": "ETH", "free": "0.5", "locked": "0.5"}]}  # 4,000 USD held
    spot_open = [
        {"symbol": "BTCUSDT", "side": "BUY", "origQty": "0.01", "executedQty": "0.005", "price": "90000",
         "stopPrice": "0"},  # 0.005 left at the current 100,000 (higher than its price): 500 USD
        {"symbol": "ETHUSDT", "side": "SELL", "origQty": "0.5", "executedQty": "0", "price": "5000"},  # reduces
        {"symbol": "ETHBTC", "side": "SELL", "origQty": "1", "executedQty": "0", "price": "0.05"},  # buys 0.05 BTC
    ]
    positions = [{"symbol": "BTCUSDT", "positionAmt": "-0.02", "markPrice": "101000"},  # 2,020 USD
                 {"symbol": "ETHUSDT", "positionAmt": "0", "markPrice": "4000"}]
    fut_open = [{"symbol": "BTCUSDT", "side": "BUY", "origQty": "0.01", "executedQty": "0", "price": "102000"},
                {"symbol": "BTCUSDT", "side": "BUY", "origQty": "0.02", "executedQty": "0", "price": "99000",
                 "reduceOnly": True}]
    algo = [{"symbol": "ETHUSDT", "side": "BUY", "quantity": "1", "triggerPrice": "3000", "reduceOnly": False},
            {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "closePosition": "true"}]
    marks = {"BTCUSDT": D("101000"), "ETHUSDT": D("4100")}
    total = gross_exposure(spot, PRICES, spot_open, positions, fut_open, algo, marks)
    assert total == 4000 + 500 + D("0.05") * 100000 + 2020 + 1020 + 4100


def test_an_open_order_that_cannot_be_valued_fails_closed():
    with pytest.raises(FactError):
        gross_exposure({"balances": []}, {}, [{"symbol": "ABCXYZ", "side": "BUY", "origQty": "1", "executedQty": "0",
                                               "price": "1"}], [], [], [], {})


def test_closes_from_trade_history():
    fut = [{"symbol": "BTCUSDT", "orderId": 1, "realizedPnl": "0", "time": 1000},  # an opening fill
           {"symbol": "BTCUSDT", "orderId": 2, "realizedPnl": "-3", "time": 2000},
           {"symbol": "BTCUSDT", "orderId": 2, "realizedPnl": "1", "time": 2500},  # same order: -2 in all
           {"symbol": "BTCUSDT", "orderId": 3, "realizedPnl": "4", "time": 3000}]
    assert futures_closes(fut) == [Close("BTCUSDT", 2.5, D(-2)), Close("BTCUSDT", 3.0, D(4))]
    spot = [{"symbol": "ETHUSDT", "orderId": 9, "isBuyer": False, "qty": "1", "quoteQty": "3000", "time": 500},
            {"symbol": "ETHUSDT", "orderId": 10, "isBuyer": True, "qty": "1", "quoteQty": "4000", "time": 1000},
            {"symbol": "ETHUSDT", "orderId": 11, "isBuyer": True, "qty": "1", "quoteQty": "2000", "time": 1100},
            {"symbol": "ETHUSDT", "orderId": 12, "isBuyer": False, "qty": "0.5", "quoteQty": "1400", "time": 2000},
            {"symbol": "ETHUSDT", "orderId": 12, "isBuyer": False, "qty": "0.5", "quoteQty": "1400", "time": 2100}]
    # Order 9 has no buys before it (not judged); order 12 sold at 2,800 against an average buy of 3,000.
    assert spot_closes(spot) == [Close("ETHUSDT", 0.5, D(0)), Close("ETHUSDT", 2.1, D(-200))]


@pytest.mark.parametrize(("losses_at", "now", "expect"), [
    ([100, 200, 300], 400, (3, 1800 - 100)),  # three within the hour: paused 30 min from the third
    ([100, 200, 300], 300 + 1800, (3, 0)),  # the pause is over
    ([0, 2000, 4000], 4100, (2, 0)),  # never three within one hour
    ([100, 200], 300, (2, 0)),
])
def test_loss_streak(losses_at, now, expect):
    closes = [Close("X", t, D(-1)) for t in losses_at] + [Close("X", 250, D(5))]  # a win does not count
    assert streak_left(closes, 3, 3600, 1800, now) == expect


def test_a_reset_forgets_the_losses_before_it():
    closes = [Close("X", t, D(-1)) for t in (100, 200, 300)]
    assert streak_left(closes, 3, 3600, 1800, 400, since=250) == (1, 0)
    assert close_left(closes, True, 300, 400, since=350) == 0


def test_cooldown_after_close_only_for_a_symbol_that_is_flat():
    closes = [Close("X", 100, D(3)), Close("X", 200, D(-1))]
    assert close_left(closes, True, 300, 260) == 240
    assert close_left(closes, False, 300, 260) == 0  # reduced, not closed
    assert close_left(closes, True, 300, 600) == 0


def test_equity_samples_and_trips_in_the_store_follow_the_utc_day(tmp_path, store_backend):
    clock = FakeClock(1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600)  # 01:00 UTC
    store = StateStore(tmp_path / "state.db", clock)
    prot = parse_text("version: 1\naccount:\n  protections: {max_daily_loss_usd: 300, max_drawdown_pct: 5}\n",
                      "t.yaml").policy.account.protections
    checks = equity_checks(prot)
    assert store.record_equity("a", D("10000"), checks) == (D("10000"), D("10000"), {})
    clock.advance(60)
    assert store.record_equity("a", D("10400"), checks)[:2] == (D("10000"), D("10400"))
    clock.advance(60)
    first, peak, trips = store.record_equity("a", D("9850"), checks)  # -150 on the day, -5.29 % from the peak
    assert set(trips) == {"max_drawdown_pct"} and trips["max_drawdown_pct"]["code"] == "DRAWDOWN_LIMIT"
    clock.advance(60)
    _, _, trips = store.record_equity("a", D("10500"), checks)  # equity recovers: the trip stays
    assert set(trips) == {"max_drawdown_pct"}
    assert store.trips("b") == {}  # per account
    # Reopened (a restart): the day's start, peak and trip are kept.
    store.close()
    store = StateStore(tmp_path / "state.db", clock)
    assert set(store.trips("a")) == {"max_drawdown_pct"}
    assert store.equity_day("a")["first"] == D("10000") and store.equity_day("a")["peak"] == D("10500")
    # A human's reset lifts it, and the day starts again from the next sample.
    done = store.reset_protections(None, by="test")
    assert done["trips_lifted"] == 1
    assert store.trips("a") == {}
    assert store.record_equity("a", D("9000"), checks)[:2] == (D("9000"), D("9000"))
    assert store.last_reset("a") == clock()
    # The next UTC day starts afresh, whatever the last one did.
    clock.advance(60)
    store.record_equity("a", D("8000"), checks)
    assert set(store.trips("a")) == {"max_daily_loss_usd", "max_drawdown_pct"}
    clock.advance(86400)
    assert store.trips("a") == {}
    assert store.record_equity("a", D("8000"), checks)[:2] == (D("8000"), D("8000"))


def test_orders_in_flight_count_toward_the_gross_exposure_at_the_notional_they_were_allowed_at():
    buy = Call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})
    allowed = Facts(notional_usd=D("1000"), adds_exposure=True)
    flying = [pending_entry(buy, allowed, f"c{i}", "o", f"x{i}") for i in range(3)]
    sell = Call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                             "quantity": "0.01"})
    flying.append(pending_entry(sell, Facts(notional_usd=D("1000"), adds_exposure=False), "s", "o", "y"))
    facts = Facts(notional_usd=D("500"), adds_exposure=True, gross_exposure_usd=D("2000"))
    assert with_pending(buy, facts, flying).gross_after_usd == D("5500")  # 2,000 + 3 x 1,000 + 500; the sell adds 0
    unpriced = pending_entry(buy, Facts(adds_exposure=True), "u", "o", "z")
    assert with_pending(buy, facts, [*flying, unpriced]).gross_after_usd is None  # cannot be bounded: fail closed


@pytest.mark.parametrize(("body", "says"), [
    ("{max_daily_loss_usd: -1}", "max_daily_loss_usd"),
    ("{max_drawdown_pct: 100}", "max_drawdown_pct"),
    ("{loss_streak: {losses: 3, window: 3600}}", "cooldown"),
    ("{cooldown_after_close: 0}", "cooldown_after_close"),
    ("{max_gross_exposure: 5}", "max_gross_exposure"),
])
def test_protection_keys_are_checked_at_load(body, says):
    with pytest.raises(PolicyLoadError) as err:
        parse_text(f"version: 1\naccount:\n  protections: {body}\n", "p.yaml")
    assert says in str(err.value)


class _Reader:
    """An account whose equity the test sets; ``connected`` as the exchange adapter reports it."""

    def __init__(self) -> None:
        self.exchange = type("X", (), {"connected": False})()
        self.equity: Decimal | Exception = D("1000")
        self.reads = 0

    async def read(self, equity, gross, seq):
        from binance_mcp.policy.protections import Equity

        self.reads += 1
        if isinstance(self.equity, Exception):
            raise self.equity
        return Equity(self.equity, (), 0.0), None


async def test_background_samples_wait_for_the_exchange_and_then_keep_the_days_peak(tmp_path, caplog):
    import asyncio
    import types

    from binance_mcp.policy.protections import SAMPLE_EVERY_S, Protector
    from binance_mcp.policy.state import StoreWorker

    clock = FakeClock()
    state = StateStore(tmp_path / "state.db", clock)
    loaded = parse_text("version: 1\naccount:\n  protections: {max_drawdown_pct: 5}\n", "t.yaml")
    ticks: asyncio.Queue = asyncio.Queue()
    waits: list[float] = []

    async def current():
        return loaded

    async def sleep(s):  # the sampler's minute: passes when the test says so
        waits.append(s)
        await ticks.get()
        clock.advance(s)

    async def minute() -> None:
        """Let one minute pass and the sampler finish what it does then (it is back in its sleep)."""
        before = len(waits)
        ticks.put_nowait(None)
        for _ in range(500):
            if len(waits) > before:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the sampler did not come back to its sleep")

    guard = types.SimpleNamespace(clock=clock, store=StoreWorker(), state=state, account="a", current=current,
                                  sleep=sleep, redact=lambda s: s)
    reader = _Reader()
    p = Protector(guard, reader)
    p.start()
    await asyncio.sleep(0)
    await minute()
    assert reader.reads == 0 and state.equity_day("a") is None  # no network before a call used the exchange
    reader.exchange.connected = True
    for equity in ("1000", "1200", "1100"):
        reader.equity = D(equity)
        await minute()
    day = state.equity_day("a")
    assert (day["first"], day["peak"], day["last"]) == (D("1000"), D("1200"), D("1100"))
    reader.equity = FactError("the futures account cannot be read")
    await minute()
    await minute()
    await p.aclose()
    guard.store.close()
    failures = [r for r in caplog.records if "equity sample failed" in r.getMessage()]
    assert len(failures) == 1  # once per new failure, not once a minute
    assert set(waits) == {SAMPLE_EVERY_S}
