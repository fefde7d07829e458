"""A ccxt session (``ccxt.binance`` and ``ccxt.binanceusdm``, sync, ccxt 4.5) against the simulator, set up by the
snippet in docs/paper-trading.md (run here as written, with the test simulator's URL and keys). Each result is
checked against the simulator's own state (its feed, book, balances, orders, positions and income ledger), read
in-process from the running simulator, not against what ccxt was answered.

ccxt cannot reach a real host: every one of its API URLs is rewritten to 127.0.0.1 by the snippet, and the test
fails if one is not."""

from __future__ import annotations

import re
from decimal import Decimal as D
from pathlib import Path

import ccxt
import pytest

from binance_mcp.simulator.symbols import FUTURES_SYMBOLS, SPOT_SYMBOLS

DOC = Path(__file__).resolve().parents[2] / "docs" / "paper-trading.md"
MARKER = "<!-- ccxt-options: tests/simulator/test_ccxt_session.py runs this block -->"
DOC_URL = "http://127.0.0.1:8765"
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"


def doc_snippet() -> str:
    text = DOC.read_text(encoding="utf-8")
    assert MARKER in text, "the ccxt snippet's marker is gone from docs/paper-trading.md"
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block is not None
    assert DOC_URL in block.group(1)
    return block.group(1)


class Session:
    """A ccxt exchange whose calls are counted; ``ex`` is the ccxt object."""

    def __init__(self, ex) -> None:
        self.ex = ex
        self.calls: list[str] = []

    def __call__(self, method: str, *args, **kwargs):
        self.calls.append(method)
        return getattr(self.ex, method)(*args, **kwargs)


@pytest.fixture
def exchanges(sim):
    namespace: dict = {"KEY": sim.api_key, "SECRET": sim.api_secret}
    exec(compile(doc_snippet().replace(DOC_URL, sim.base_url), str(DOC), "exec"), namespace)  # noqa: S102
    out = []
    for name in ("spot", "usdm"):
        ex = namespace[name]
        assert all(url.startswith(sim.base_url + "/") for url in ex.urls["api"].values()), ex.urls["api"]
        ex.enableRateLimit = False  # ccxt's own throttle only slows the test; the simulator counts weight anyway
        out.append(Session(ex))
    sim.control("price", {"symbol": "BTCUSDT", "price": "95000"})
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
    return out


def f(value) -> float:
    return float(value)


def test_the_snippet_builds_both_exchanges_on_the_simulator_only(sim):
    namespace: dict = {"KEY": "k", "SECRET": "s"}
    exec(compile(doc_snippet(), str(DOC), "exec"), namespace)  # noqa: S102
    for name, cls in (("spot", ccxt.binance), ("usdm", ccxt.binanceusdm)):
        ex = namespace[name]
        assert type(ex) is cls and set(ex.urls["api"]) == set(cls().urls["api"])
        assert all(url.startswith(DOC_URL + "/") for url in ex.urls["api"].values())
        assert ex.options["fetchCurrencies"] is False


def test_spot_session(exchanges, sim):
    s, _ = exchanges
    state = sim.sim
    markets = s("load_markets")
    assert {m["id"] for m in markets.values()} == set(SPOT_SYMBOLS)
    btc = markets[SPOT]
    assert btc["spot"] and btc["limits"]["amount"]["min"] == f(SPOT_SYMBOLS["BTCUSDT"].min_qty)
    assert btc["precision"]["price"] == f(SPOT_SYMBOLS["BTCUSDT"].tick_size)
    assert abs(s("fetch_time") - state.now_ms()) < 5_000
    bids, asks = state.feed.symbols["BTCUSDT"].book(5)
    ticker = s("fetch_ticker", SPOT)
    assert ticker["last"] == 95000 and (ticker["bid"], ticker["ask"]) == (f(bids[0][0]), f(asks[0][0]))
    tickers = s("fetch_tickers")
    assert {t["symbol"]: t["last"] for t in tickers.values()} == {
        markets_symbol(markets, n): f(fd.price) for n, fd in state.feed.symbols.items()}
    book = s("fetch_order_book", SPOT, 5)
    assert book["bids"] == [[f(p), f(q)] for p, q in bids] and book["asks"] == [[f(p), f(q)] for p, q in asks]
    assert s("fetch_bids_asks", [SPOT])[SPOT]["ask"] == f(asks[0][0])
    trades = s("fetch_trades", SPOT, None, 5)
    assert len(trades) == 5 and trades[-1]["price"] == 95000
    assert int(trades[-1]["id"]) == int(ticker["info"]["lastId"])
    candles = s("fetch_ohlcv", SPOT, "1h", None, 3)
    assert len(candles) == 3 and candles[-1][4] == 95000 and candles[-1][0] % 3_600_000 == 0
    fee = s("privateGetAccountCommission", {"symbol": "BTCUSDT"})
    assert D(fee["standardCommission"]["taker"]) == D("0.001")
    balance = s("fetch_balance")
    assert balance["USDT"]["free"] == f(state.spot.free("USDT")) == 10000

    # orders: limit, market, by cost, post-only, IOC, the four stop / take-profit types
    resting = s("create_order", SPOT, "limit", "buy", 0.01, 90000)
    held = state.spot.orders[int(resting["id"])]
    assert (held.type, held.status, held.price) == ("LIMIT", "NEW", D("90000"))
    assert state.spot.balances["USDT"][1] == D("900")
    assert [o["id"] for o in s("fetch_open_orders", SPOT)] == [resting["id"]]
    assert s("fetch_order", resting["id"], SPOT)["status"] == "open"
    edited = s("edit_order", resting["id"], SPOT, "limit", "buy", 0.02, 91000)  # spot: cancel-replace
    assert state.spot.orders[int(resting["id"])].status == "CANCELED"
    new = state.spot.orders[int(edited["id"])]
    assert (new.status, new.orig_qty, new.price) == ("NEW", D("0.02"), D("91000"))
    assert s("cancel_order", edited["id"], SPOT)["status"] == "canceled"
    assert state.spot.orders[int(edited["id"])].status == "CANCELED" and state.spot.balances["USDT"][1] == 0

    bought = s("create_order", SPOT, "market", "buy", 0.01)
    assert bought["status"] == "closed" and bought["filled"] == 0.01
    assert bought["average"] == f(asks[0][0])
    assert state.spot.free("BTC") == D("0.01") - D("0.01") * D("0.001")  # the fee is taken in BTC
    by_cost = s("create_market_buy_order_with_cost", SPOT, 100)
    assert state.spot.orders[int(by_cost["id"])].orig_quote_qty == D("100") and by_cost["cost"] <= 100
    maker = s("create_order", SPOT, "limit", "buy", 0.001, 90000, {"postOnly": True})
    assert state.spot.orders[int(maker["id"])].type == "LIMIT_MAKER"
    ioc = s("create_order", SPOT, "limit", "buy", 0.001, 94000, {"timeInForce": "IOC"})
    assert state.spot.orders[int(ioc["id"])].status == "EXPIRED"
    triggers = {
        "STOP_LOSS": s("create_order", SPOT, "market", "sell", 0.001, None, {"stopLossPrice": 90000}),
        "STOP_LOSS_LIMIT": s("create_order", SPOT, "limit", "sell", 0.001, 89000, {"stopLossPrice": 90000}),
        "TAKE_PROFIT": s("create_order", SPOT, "market", "sell", 0.001, None, {"takeProfitPrice": 99000}),
        "TAKE_PROFIT_LIMIT": s("create_order", SPOT, "limit", "sell", 0.001, 99500, {"takeProfitPrice": 99000}),
    }
    for otype, order in triggers.items():
        assert state.spot.orders[int(order["id"])].type == otype and order["triggerPrice"] in (90000, 99000)
    sim.control("price", {"symbol": "BTCUSDT", "price": "89500"})  # through both stop-losses
    assert s("fetch_order", triggers["STOP_LOSS"]["id"], SPOT)["status"] == "closed"
    assert state.spot.orders[int(triggers["STOP_LOSS"]["id"])].status == "FILLED"
    mine = s("fetch_my_trades", SPOT)
    assert {t["order"] for t in mine} >= {bought["id"], triggers["STOP_LOSS"]["id"]}
    assert len(mine) == len([t for t in state.spot.trades if t["symbol"] == "BTCUSDT"])
    first = next(t for t in mine if t["order"] == bought["id"])
    assert (first["fee"]["currency"], first["fee"]["cost"]) == ("BTC", 0.01 * 0.001)
    history = s("fetch_orders", SPOT)
    assert {o["id"] for o in history} == {str(i) for i, o in state.spot.orders.items() if o.symbol == "BTCUSDT"}
    s("cancel_all_orders", SPOT)
    assert state.spot.open_orders("BTCUSDT") == []
    assert len(s.calls) >= 25, s.calls


def markets_symbol(markets: dict, market_id: str) -> str:
    return next(m["symbol"] for m in markets.values() if m["id"] == market_id)


def test_usdm_session(exchanges, sim):
    _, u = exchanges
    state = sim.sim
    fx = state.futures
    markets = u("load_markets")
    assert {m["id"] for m in markets.values()} == set(FUTURES_SYMBOLS)
    perp = markets[PERP]
    assert perp["linear"] and perp["swap"] and perp["contractSize"] == 1
    assert perp["precision"]["amount"] == f(FUTURES_SYMBOLS["BTCUSDT"].step_size)
    last = state.market.futures_last("BTCUSDT")
    ticker = u("fetch_ticker", PERP)
    assert ticker["last"] == f(last) == 95000
    bids, asks = state.feed.symbols["BTCUSDT"].book(5, price=last, tick=FUTURES_SYMBOLS["BTCUSDT"].tick_size,
                                                    step=FUTURES_SYMBOLS["BTCUSDT"].step_size)
    book = u("fetch_order_book", PERP, 5)
    assert book["bids"][0] == [f(bids[0][0]), f(bids[0][1])] and book["asks"][0] == [f(asks[0][0]), f(asks[0][1])]
    assert len(u("fetch_tickers")) == len(FUTURES_SYMBOLS)
    trades = u("fetch_trades", PERP, None, 3)
    assert trades[-1]["price"] == 95000 and trades[-1]["amount"] > 0
    assert u("fetch_ohlcv", PERP, "1m", None, 2)[-1][4] == 95000
    assert u("fetch_mark_ohlcv", PERP, "1m", None, 2)[-1][4] == f(state.market.mark_price("BTCUSDT"))
    assert u("fetch_index_ohlcv", PERP, "1m", None, 2)[-1][4] == f(state.market.index_price("BTCUSDT"))
    premium = u("fetch_premium_index_ohlcv", PERP, "1h", None, 2)
    assert premium[-1][4] == f(state.market.mark_basis["BTCUSDT"].quantize(D("0.00000001")))
    funding = u("fetch_funding_rate", PERP)
    assert funding["fundingRate"] == f(state.market.funding_rate("BTCUSDT"))
    assert funding["fundingTimestamp"] == state.market.next_funding_time(state.now_ms())  # ccxt: the next one
    history = u("fetch_funding_rate_history", PERP, None, 3)
    assert len(history) == 3 and history[-1]["timestamp"] == funding["fundingTimestamp"] - 8 * 3_600_000
    assert set(u("fetch_funding_rates")) == {markets_symbol(markets, n) for n in FUTURES_SYMBOLS}
    oi_before = u("fetch_open_interest", PERP)["openInterestAmount"]
    fee = u("fetch_trading_fee", PERP)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
    balance = u("fetch_balance")
    assert balance["USDT"]["total"] == f(fx.wallet["USDT"]) == 10000

    # settings
    u("set_leverage", 10, PERP)
    assert fx.leverage["BTCUSDT"] == 10 and u("fetch_leverage", PERP)["longLeverage"] == 10
    u("set_margin_mode", "isolated", PERP)
    assert fx.margin_type["BTCUSDT"] == "ISOLATED"
    u("set_position_mode", True)
    assert fx.dual is True and u("fetch_position_mode", PERP)["hedged"] is True
    u("set_position_mode", False)
    assert fx.dual is False

    # a position, its margin, its orders
    opened = u("create_order", PERP, "market", "buy", 0.1)
    pos = fx.positions[("BTCUSDT", "BOTH")]
    assert pos.amt == D("0.1") and fx.orders[int(opened["id"])].status == "FILLED"
    (position,) = u("fetch_positions", [PERP])
    assert (position["contracts"], position["side"], position["entryPrice"]) == (0.1, "long", f(pos.entry))
    assert position["marginMode"] == "isolated"  # (positionRisk v3 has no leverage: ccxt says None, as on Binance)
    assert position["liquidationPrice"] == f(fx.liquidation_price(pos).quantize(D("0.00000001")))
    assert u("fetch_open_interest", PERP)["openInterestAmount"] == pytest.approx(oi_before + 0.1)
    u("add_margin", PERP, 50)
    u("reduce_margin", PERP, 20)
    assert pos.margin_added == D("30")

    resting = u("create_order", PERP, "limit", "buy", 0.01, 90000)
    assert fx.orders[int(resting["id"])].status == "NEW"
    edited = u("edit_order", resting["id"], PERP, "limit", "buy", 0.02, 91000)  # futures: PUT order (modify)
    assert edited["id"] == resting["id"]
    held = fx.orders[int(resting["id"])]
    assert (held.orig_qty, held.price) == (D("0.02"), D("91000"))
    batch = u("create_orders", [
        {"symbol": PERP, "type": "limit", "side": "buy", "amount": 0.01, "price": 89000},
        {"symbol": PERP, "type": "limit", "side": "buy", "amount": 0.01, "price": 88000,
         "params": {"clientOrderId": "ccxt-batch-2"}},
    ])
    assert [fx.orders[int(o["id"])].status for o in batch] == ["NEW", "NEW"]
    u("cancel_orders", [batch[0]["id"]], PERP)
    u("cancel_orders", [], PERP, {"origClientOrderIdList": ["ccxt-batch-2"]})
    assert [fx.orders[int(o["id"])].status for o in batch] == ["CANCELED", "CANCELED"]
    stops = {
        "STOP_MARKET": u("create_order", PERP, "market", "sell", 0.1, None, {"stopLossPrice": 90000,
                                                                               "reduceOnly": True}),
        "TAKE_PROFIT": u("create_order", PERP, "limit", "sell", 0.1, 99500, {"takeProfitPrice": 99000,
                                                                                "reduceOnly": True}),
        "STOP": u("create_order", PERP, "limit", "buy", 0.01, 96100, {"triggerPrice": 96000}),
        "TAKE_PROFIT_MARKET": u("create_order", PERP, "market", "sell", 0.1, None, {"takeProfitPrice": 98000,
                                                                                      "reduceOnly": True}),
    }
    for otype, order in stops.items():
        assert fx.algo[int(order["id"])].order_type == otype and fx.algo[int(order["id"])].status == "NEW"
    trigger_open = u("fetch_open_orders", PERP, None, None, {"trigger": True})
    assert {o["id"] for o in trigger_open} == {o["id"] for o in stops.values()}
    u("cancel_order", stops["STOP"]["id"], PERP, {"trigger": True})
    assert fx.algo[int(stops["STOP"]["id"])].status == "CANCELED"
    assert [o["id"] for o in u("fetch_open_orders", PERP)] == [resting["id"]]
    u("cancel_all_orders", PERP)
    assert fx.open_orders("BTCUSDT") == []

    # close at a profit: realised PnL, fees and the ledger agree with the exchange's records
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "96000", "mark": "96000"})
    u("create_order", PERP, "market", "sell", 0.1, None, {"reduceOnly": True})
    assert pos.amt == 0 and u("fetch_positions", [PERP]) == []
    mine = u("fetch_my_trades", PERP)
    assert len(mine) == len([t for t in fx.trades if t["symbol"] == "BTCUSDT"]) >= 2
    ledger = u("fetch_ledger", "USDT")
    assert sorted(e["amount"] * (1 if e["direction"] == "in" else -1) for e in ledger) == sorted(
        f(r.income) for r in fx.income.records)
    assert sum(D(str(e["amount"])) * (1 if e["direction"] == "in" else -1) for e in ledger) == \
        fx.wallet["USDT"] - 10000
    assert u("fetch_funding_history", PERP) == [] and not [r for r in fx.income.records
                                                          if r.income_type == "FUNDING_FEE"]
    assert len(u.calls) >= 30, u.calls
