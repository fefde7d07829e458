"""Funding and liquidation on a paper futures account, with the paper exchange's own clock moved by its controls,
seen through the real python-binance client over HTTP and checked on what the exchange holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance import Client

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.market import FUNDING_INTERVAL
from binance_mcp.simulator.paper import PaperExchange, account_meta
from binance_mcp.simulator.runner import start_in_thread
from binance_mcp.simulator.store import PaperStore
from tests.helpers import D, point_at

BTC = "BTCUSDT"


@pytest.fixture
def paper(tmp_path):
    meta, _ = account_meta(tmp_path, "synthetic", ("http://127.0.0.1:9/api", "http://127.0.0.1:9/fapi"),
                           {"USDT": D(10000)}, False, False)
    rs = start_in_thread(sim=PaperExchange(SimConfig(controls=True, tick_seconds=0), tmp_path, meta))
    client = point_at(Client(rs.api_key, rs.api_secret, ping=False), rs.base_url)
    try:
        yield rs, client
    finally:
        client.close_connection()
        rs.stop()


def move_clock_to(rs, client: Client, when_ms: int) -> None:
    skew = when_ms - (rs.sim.now_ms() - rs.sim.clock.skew_ms)
    rs.control("clock", {"skew_ms": skew})
    client.timestamp_offset = skew  # the client signs with the exchange's time, as a resynced client does


def test_funding_is_paid_at_each_funding_time_and_shows_in_income_history(paper, tmp_path):
    rs, client = paper
    client.futures_create_order(symbol=BTC, side="BUY", type="MARKET", quantity="0.1")
    start = rs.sim.now_ms()
    due = (start // FUNDING_INTERVAL + 1) * FUNDING_INTERVAL
    mark, rate = rs.sim.market.mark_price(BTC), rs.sim.market.funding_rate(BTC)
    assert rate > 0  # the synthetic premium: a long pays
    wallet = D(client.futures_account()["totalWalletBalance"])
    move_clock_to(rs, client, due - 1000)  # not yet
    assert D(client.futures_account()["totalWalletBalance"]) == wallet
    assert client.futures_income_history(incomeType="FUNDING_FEE") == []
    move_clock_to(rs, client, due + FUNDING_INTERVAL + 5000)  # two funding times have passed
    after = D(client.futures_account()["totalWalletBalance"])
    fee = (-D("0.1") * mark * rate).quantize(Decimal("0.00000001"))
    assert after == wallet + 2 * fee
    rows = client.futures_income_history(incomeType="FUNDING_FEE", startTime=start)
    assert [(r["symbol"], D(r["income"]), r["time"]) for r in rows] == [(BTC, fee, due),
                                                                        (BTC, fee, due + FUNDING_INTERVAL)]
    # The same request again pays nothing more, and the stored account has the records.
    assert D(client.futures_account()["totalWalletBalance"]) == after
    stored = PaperStore(tmp_path).read()
    assert [r["incomeType"] for r in stored["futures"]["income"]].count("FUNDING_FEE") == 2


def test_a_position_whose_margin_runs_out_is_liquidated_at_its_liquidation_price(paper):
    rs, client = paper
    client.futures_change_margin_type(symbol=BTC, marginType="ISOLATED")
    client.futures_change_leverage(symbol=BTC, leverage=50)
    client.futures_create_order(symbol=BTC, side="BUY", type="MARKET", quantity="0.1")
    (pos,) = [p for p in client.futures_position_information(symbol=BTC) if D(p["positionAmt"])]
    liq, entry = D(pos["liquidationPrice"]), D(pos["entryPrice"])
    assert entry * D("0.97") < liq < entry  # 50x isolated: about 2 % below the entry
    resting = client.futures_create_order(symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC",
                                          quantity="0.01", price=str((liq * D("0.9")).quantize(D("0.1"))))
    rs.control("price", {"symbol": BTC, "market": "futures", "mark": str(liq + 50)})
    assert [D(p["positionAmt"]) for p in client.futures_position_information(symbol=BTC)] == [D("0.1")]  # not yet
    rs.control("price", {"symbol": BTC, "market": "futures", "mark": str(liq - 1)})
    assert [p for p in client.futures_position_information(symbol=BTC) if D(p["positionAmt"])] == []
    trades = client.futures_account_trades(symbol=BTC)
    close = trades[-1]
    assert close["side"] == "SELL" and D(close["qty"]) == D("0.1") and D(close["price"]) == liq.quantize(D("0.1"))
    assert D(close["realizedPnl"]) == (D(close["price"]) - entry) * D("0.1")
    orders = {o["orderId"]: o for o in client.futures_get_all_orders(symbol=BTC)}
    assert orders[close["orderId"]]["clientOrderId"].startswith("autoclose-")
    assert orders[resting["orderId"]]["status"] == "CANCELED"  # the symbol's open orders go first
    wallet = D(10000) + sum(D(t["realizedPnl"]) - D(t["commission"]) for t in trades)
    assert D(client.futures_account()["totalWalletBalance"]) == wallet
