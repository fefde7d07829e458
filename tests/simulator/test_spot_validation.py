"""Spot order validation through the real python-binance clients: exchange filters (-1013), precision (-1111),
illegal characters (-1100), mandatory / unexpected parameters (-1102 / -1106), enums (-1115/-1116/-1117),
unknown parameters (-1104) and symbols (-1121). A rejected order changes nothing."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.simulator.helpers import rejects

SYMBOL = "BTCUSDT"


@pytest.fixture
def api(api, sim):
    """The shared api fixture, with an account large enough for every filter to be reached first."""
    sim.control("balances", {"spot": {"BTC": "200", "USDT": "100000000"}})
    return api


def limit(qty: str = "0.01", price: str = "95000", side: str = "BUY", **extra) -> dict:
    return dict(symbol=SYMBOL, side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price, **extra)


def market(side: str = "BUY", **extra) -> dict:
    return dict(symbol=SYMBOL, side=side, type="MARKET", **extra)


def stop(otype: str = "STOP_LOSS_LIMIT", **extra) -> dict:
    return dict(symbol=SYMBOL, side="SELL", type=otype, quantity="0.01", **extra)


FILTERS = [  # BTCUSDT: tickSize 0.01, stepSize/minQty 0.00001, maxQty 9000, market maxQty 83.76, minNotional 5
    ("price-not-on-tick", limit(price="95000.005"), "PRICE_FILTER"),
    ("price-above-max", limit(price="1000000.01"), "PRICE_FILTER"),
    ("stop-not-on-tick", stop(stopPrice="90000.001", price="90000", timeInForce="GTC"), "PRICE_FILTER"),
    ("qty-below-min", limit(qty="0.000001"), "LOT_SIZE"),
    ("qty-not-on-step", limit(qty="0.000015"), "LOT_SIZE"),
    ("qty-above-max", limit(qty="9001", price="20000"), "LOT_SIZE"),
    ("market-qty-not-on-step", market(quantity="0.000015"), "LOT_SIZE"),
    ("market-qty-above-market-max", market(quantity="100"), "MARKET_LOT_SIZE"),
    ("notional-below-min", limit(qty="0.00005", price="95000"), "NOTIONAL"),
    ("market-notional-below-min", market(quantity="0.00005"), "NOTIONAL"),
    ("quote-notional-below-min", market(quoteOrderQty="4.99"), "NOTIONAL"),
    ("buy-far-below-market", limit(price="18999.99"), "PERCENT_PRICE_BY_SIDE"),
    ("sell-far-above-market", limit(side="SELL", price="475000.01"), "PERCENT_PRICE_BY_SIDE"),
]


@pytest.mark.parametrize("params,name", [c[1:] for c in FILTERS], ids=[c[0] for c in FILTERS])
async def test_filter_failures(api, params, name):
    err = await rejects(api, "create_order", **params)
    assert (err.status_code, err.code, err.message) == (400, -1013, f"Filter failure: {name}")
    assert await api("get_all_orders", symbol=SYMBOL) == []
    test_err = await rejects(api, "create_test_order", **params)  # order/test runs the same filters
    assert (test_err.code, test_err.message) == (-1013, f"Filter failure: {name}")


async def test_filter_bounds_are_inclusive(api):
    for params in (limit(qty="0.00006", price="95000"), limit(price="19000"), limit(side="SELL", price="475000"),
                   market(quantity="0.00006"), market(quoteOrderQty="5")):
        assert await api("create_test_order", **params) == {}


async def test_filters_match_exchange_info(api):
    info = await api("get_symbol_info", symbol=SYMBOL)
    filters = {f["filterType"]: f for f in info["filters"]}
    assert D(filters["PRICE_FILTER"]["tickSize"]) == D("0.01")
    assert D(filters["LOT_SIZE"]["stepSize"]) == D(filters["LOT_SIZE"]["minQty"]) == D("0.00001")
    assert D(filters["MARKET_LOT_SIZE"]["maxQty"]) == D("83.76")
    assert D(filters["NOTIONAL"]["minNotional"]) == D("5")
    assert D(filters["PERCENT_PRICE_BY_SIDE"]["bidMultiplierDown"]) * 95000 == D("19000")
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == 200


async def test_max_num_orders(api, sim):
    cfg = sim.sim.cfg
    before = cfg.spot_orders_per_10s
    sim.control("limits", {"spot_orders_per_10s": 1000})  # 200 placements in a row would hit -1015 first
    try:
        for i in range(200):
            await api("create_order", **limit(qty="0.001", price=str(90000 + i)))
        err = await rejects(api, "create_order", **limit(qty="0.001", price="89000"))
        assert (err.code, err.message) == (-1013, "Filter failure: MAX_NUM_ORDERS")
        await api("create_order", symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                  price="3000")  # the limit is per symbol
        first = (await api("get_open_orders", symbol=SYMBOL))[0]
        await api("cancel_order", symbol=SYMBOL, orderId=first["orderId"])
        assert (await api("create_order", **limit(qty="0.001", price="89000")))["status"] == "NEW"
    finally:
        sim.control("limits", {"spot_orders_per_10s": before})


async def test_max_num_algo_orders(api):
    for i in range(5):
        await api("create_order", **stop("STOP_LOSS", stopPrice=str(90000 + i)))
    err = await rejects(api, "create_order", **stop("STOP_LOSS", stopPrice="89000"))
    assert (err.code, err.message) == (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")


PARAM_ERRORS = [
    # -1111: more decimals than the asset precision (8)
    ("qty-precision", limit(qty="0.000000001"), -1111, "Parameter 'quantity' has too much precision."),
    ("price-precision", limit(price="95000.000000001"), -1111, "Parameter 'price' has too much precision."),
    # -1100: not a plain non-negative decimal
    ("qty-negative", limit(qty="-0.01"), -1100, None),
    ("qty-exponent", limit(qty="1e-2"), -1100, None),
    ("qty-nan", limit(qty="NaN"), -1100, None),
    ("price-infinity", limit(price="Infinity"), -1100, None),
    ("price-letters", limit(price="95k"), -1100, None),
    ("stop-negative", stop(stopPrice="-1", price="90000", timeInForce="GTC"), -1100, None),
    ("client-id-illegal", limit(newClientOrderId="bad.id"), -1100, None),
    ("client-id-too-long", limit(newClientOrderId="x" * 37), -1100, None),
    # -1102: mandatory by type
    ("limit-no-price", dict(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01"), -1102,
     "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
    ("limit-no-tif", dict(symbol=SYMBOL, side="BUY", type="LIMIT", quantity="0.01", price="95000"), -1102,
     "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    ("limit-no-qty", dict(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", price="95000"), -1102,
     "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."),
    ("market-no-qty", market(), -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    ("stop-no-stop-price", stop("STOP_LOSS"), -1102,
     "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."),
    ("stop-limit-no-price", stop(stopPrice="90000", timeInForce="GTC"), -1102,
     "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
    ("take-profit-limit-no-tif", stop("TAKE_PROFIT_LIMIT", stopPrice="96000", price="96000"), -1102,
     "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    ("limit-maker-no-price", dict(symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.01"), -1102,
     "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
    ("no-side", dict(symbol=SYMBOL, type="MARKET", quantity="0.01"), -1102,
     "Mandatory parameter 'side' was not sent, was empty/null, or malformed."),
    ("no-type", dict(symbol=SYMBOL, side="BUY", quantity="0.01"), -1102,
     "Mandatory parameter 'type' was not sent, was empty/null, or malformed."),
    ("no-symbol", dict(side="BUY", type="MARKET", quantity="0.01"), -1102,
     "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
    # -1106: sent when not required
    ("market-with-price", market(quantity="0.01", price="95000"), -1106,
     "Parameter 'price' sent when not required."),
    ("market-with-tif", market(quantity="0.01", timeInForce="GTC"), -1106,
     "Parameter 'timeInForce' sent when not required."),
    ("market-with-both-quantities", market(quantity="0.01", quoteOrderQty="100"), -1106,
     "Parameter 'quoteOrderQty' sent when not required."),
    ("limit-with-stop-price", limit(stopPrice="90000"), -1106, "Parameter 'stopPrice' sent when not required."),
    ("limit-with-quote-qty", limit(quoteOrderQty="100"), -1106,
     "Parameter 'quoteOrderQty' sent when not required."),
    ("stop-loss-with-price", stop("STOP_LOSS", stopPrice="90000", price="90000"), -1106,
     "Parameter 'price' sent when not required."),
    ("limit-maker-with-tif", dict(symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.01", price="90000",
                                  timeInForce="GTC"), -1106, "Parameter 'timeInForce' sent when not required."),
    # enums
    ("bad-tif", dict(limit(), timeInForce="GTX"), -1115, "Invalid timeInForce."),
    ("bad-type", dict(symbol=SYMBOL, side="BUY", type="STOP", quantity="0.01"), -1116, "Invalid orderType."),
    ("lowercase-type", dict(symbol=SYMBOL, side="BUY", type="market", quantity="0.01"), -1116, "Invalid orderType."),
    ("bad-side", market(side="HOLD", quantity="0.01"), -1117, "Invalid side."),
    ("bad-resp-type", market(quantity="0.01", newOrderRespType="ALL"), -1100, None),
    # unknown parameter and symbol
    ("unknown-param", limit(leverage="5"), -1104, None),
    ("unknown-symbol", dict(limit(), symbol="DOGEUSDT"), -1121, "Invalid symbol."),
]


@pytest.mark.parametrize("params,code,msg", [c[1:] for c in PARAM_ERRORS], ids=[c[0] for c in PARAM_ERRORS])
async def test_parameter_errors(api, params, code, msg):
    err = await rejects(api, "create_order", **params)
    assert err.status_code == 400 and err.code == code
    if msg is not None:
        assert err.message == msg
    if code == -1100:
        assert err.message.startswith("Illegal characters found in parameter")
    assert await api("get_all_orders", symbol=SYMBOL) == []


async def test_rejected_orders_leave_balances_untouched(api):
    before = (await api("get_account"))["balances"]
    for params in (limit(price="95000.005"), limit(qty="-1"), market()):
        await rejects(api, "create_order", **params)
    assert (await api("get_account"))["balances"] == before


@pytest.mark.parametrize("method,params", [
    ("get_open_orders", {"symbol": "DOGEUSDT"}), ("get_all_orders", {"symbol": "DOGEUSDT"}),
    ("get_my_trades", {"symbol": "DOGEUSDT"}), ("cancel_order", {"symbol": "DOGEUSDT", "orderId": 1}),
    ("cancel_all_open_orders", {"symbol": "DOGEUSDT"}), ("get_order", {"symbol": "DOGEUSDT", "orderId": 1}),
])
async def test_unknown_symbol_on_queries_and_cancels(api, method, params):
    err = await rejects(api, method, **params)
    assert (err.code, err.message) == (-1121, "Invalid symbol.")


async def test_query_parameter_errors(api):
    err = await rejects(api, "get_all_orders", symbol=SYMBOL, limit=1001)
    assert err.code == -1130
    err = await rejects(api, "get_all_orders", symbol=SYMBOL, orderId="abc")
    assert err.code == -1100
    err = await rejects(api, "get_account", omitZeroBalances="maybe")
    assert err.code == -1100
    err = await rejects(api, "get_open_orders", symbol=SYMBOL, orderId=1)
    assert err.code == -1104
