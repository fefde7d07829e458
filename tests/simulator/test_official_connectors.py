"""Binance's official Python connectors (``binance-sdk-spot``, ``binance-sdk-derivatives-trading-usds-futures``)
on the simulator, for the endpoints added for real clients: the connector builds and signs each request its own
way and parses each reply into its own models; the values are checked against the simulator's own state."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    ConfigurationRestAPI as FuturesConfiguration,
)
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
    PlaceMultipleOrdersBatchOrdersParameterInner,
)
from binance_sdk_spot.spot import ConfigurationRestAPI, Spot

SYMBOL = "BTCUSDT"


@pytest.fixture
def connectors(sim):
    sim.control("price", {"symbol": SYMBOL, "price": "95000"})
    sim.control("price", {"symbol": SYMBOL, "market": "futures", "price": "95000", "mark": "95000"})
    # timeout in ms: the first call of a fresh simulator builds the price history (about a second)
    common = dict(api_key=sim.api_key, api_secret=sim.api_secret, base_path=sim.base_url, retries=0, timeout=15000)
    spot = Spot(config_rest_api=ConfigurationRestAPI(**common)).rest_api
    futures = DerivativesTradingUsdsFutures(config_rest_api=FuturesConfiguration(**common)).rest_api
    return spot, futures


def test_spot_connector(connectors, sim):
    spot, _ = connectors
    state = sim.sim
    trades = spot.get_trades(symbol=SYMBOL, limit=3).data()
    agg = spot.agg_trades(symbol=SYMBOL, from_id=trades[0].id, limit=3).data()
    assert [(a.a, a.p, a.T) for a in agg] == [(t.id, t.price, t.time) for t in trades]
    assert D(trades[-1].price) == state.feed.price(SYMBOL)
    bids, asks = state.feed.symbols[SYMBOL].book(1)
    top = spot.ticker_book_ticker(symbol=SYMBOL).data().actual_instance
    assert (D(top.bid_price), D(top.ask_price)) == (bids[0][0], asks[0][0])
    assert spot.avg_price(symbol=SYMBOL).data().mins == 5
    rolling = spot.ticker(symbol=SYMBOL, window_size="1h").data().actual_instance
    assert D(rolling.last_price) == state.feed.price(SYMBOL) and rolling.open_time % 60_000 == 0
    assert 3_600_000 <= rolling.close_time - rolling.open_time < 3_660_000
    mini = spot.ticker24hr(symbol=SYMBOL, type="MINI").data().actual_instance
    assert mini.price_change is None and mini.bid_price is None and D(mini.last_price) == D("95000")
    fees = spot.account_commission(symbol=SYMBOL).data()
    assert D(fees.standard_commission.taker) == D("0.001")
    old = spot.new_order(symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTC", quantity=0.01,
                         price=90000).data()
    replaced = spot.order_cancel_replace(symbol=SYMBOL, side="BUY", type="LIMIT", cancel_replace_mode="STOP_ON_FAILURE",
                                         time_in_force="GTC", quantity=0.02, price=91000,
                                         cancel_order_id=old.order_id).data()
    assert replaced.cancel_result == "SUCCESS" and replaced.new_order_result == "SUCCESS"
    new_id = replaced.new_order_response.order_id
    assert state.spot.orders[old.order_id].status == "CANCELED" and state.spot.orders[new_id].price == D("91000")


def test_futures_connector(connectors, sim):
    _, fut = connectors
    fx = sim.sim.futures
    trades = fut.recent_trades_list(symbol=SYMBOL, limit=3).data()
    agg = fut.compressed_aggregate_trades_list(symbol=SYMBOL, from_id=trades[0].id, limit=3).data()
    assert [a.a for a in agg] == [t.id for t in trades] and D(trades[-1].price) == D("95000")
    top = fut.symbol_order_book_ticker(symbol=SYMBOL).data().actual_instance
    assert D(top.ask_price) - D(top.bid_price) == D("0.1")
    funding = fut.get_funding_rate_history(symbol=SYMBOL, limit=2).data()
    assert [r.funding_time % (8 * 3_600_000) for r in funding] == [0, 0]
    assert {r.symbol for r in fut.get_funding_rate_info().data()} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert D(fut.open_interest(symbol=SYMBOL).data().open_interest) > 0
    assert D(fut.user_commission_rate(symbol=SYMBOL).data().taker_commission_rate) == D("0.0005")
    assert len(fut.index_price_kline_candlestick_data(pair=SYMBOL, interval="1h", limit=2).data()) == 2
    assert len(fut.premium_index_kline_data(symbol=SYMBOL, interval="1h", limit=2).data()) == 2

    fut.change_margin_type(symbol=SYMBOL, margin_type="ISOLATED")
    fut.new_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity=0.01)
    assert fut.modify_isolated_position_margin(symbol=SYMBOL, amount=25, type=1).data().code == 200
    assert fx.positions[(SYMBOL, "BOTH")].margin_added == D("25")
    income = fut.get_income_history(symbol=SYMBOL).data()
    assert [(r.income_type, D(r.income)) for r in income] == [(r.income_type, r.income) for r in fx.income.records]
    order = fut.new_order(symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTC", quantity=0.01,
                          price=90000).data()
    modified = fut.modify_order(symbol=SYMBOL, side="BUY", quantity=0.02, price=91000, order_id=order.order_id).data()
    assert modified.order_id == order.order_id and fx.orders[order.order_id].price == D("91000")
    batch = fut.place_multiple_orders(batch_orders=[PlaceMultipleOrdersBatchOrdersParameterInner(
        symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTC", quantity=0.01, price=89000)]).data()
    (placed,) = batch
    assert fx.orders[placed.order_id].status == "NEW"
    cancelled = fut.cancel_multiple_orders(symbol=SYMBOL, order_id_list=[placed.order_id, order.order_id]).data()
    assert [row.status for row in cancelled] == ["CANCELED", "CANCELED"]
    assert [fx.orders[i].status for i in (placed.order_id, order.order_id)] == ["CANCELED", "CANCELED"]
