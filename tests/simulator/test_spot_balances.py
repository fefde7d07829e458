"""Spot balances through the real python-binance clients: free / locked on rest, cancel and fill, commission
from the received asset, insufficient balance and duplicate client order ids."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.simulator.helpers import rejects

SYMBOL = "BTCUSDT"
RATE = D("0.001")
INSUFFICIENT = "Account has insufficient balance for requested action."




async def balances(api, **params) -> dict[str, tuple[D, D]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in (await api("get_account", **params))["balances"]}


def limit_order(side: str, qty: str, price: str, tif: str = "GTC", **extra) -> dict:
    return dict(symbol=SYMBOL, side=side, type="LIMIT", timeInForce=tif, quantity=qty, price=price, **extra)


def fee(amount: D) -> D:
    return (amount * RATE).quantize(D("0.00000001"))


async def test_account_lists_balances_and_omits_zero_ones_on_request(api, sim):
    sim.control("balances", {"spot": {"BTC": "0.5", "ETH": "0"}})
    account = await api("get_account")
    assert account["accountType"] == "SPOT" and account["canTrade"] is True
    assert account["commissionRates"]["taker"] == "0.00100000"
    all_rows = await balances(api)
    assert all_rows == {"BTC": (D("0.5"), D(0)), "ETH": (D(0), D(0)), "USDT": (D("10000"), D(0))}
    assert all(isinstance(b["free"], str) and isinstance(b["locked"], str) for b in account["balances"])
    assert set(await balances(api, omitZeroBalances="true")) == {"BTC", "USDT"}
    assert set(await balances(api, omitZeroBalances="false")) == {"BTC", "ETH", "USDT"}


async def test_resting_buy_locks_quote_and_cancel_releases_it(api):
    order = await api("create_order", **limit_order("BUY", "0.02", "90000"))
    assert (await balances(api))["USDT"] == (D("8200"), D("1800"))
    await api("cancel_order", symbol=SYMBOL, orderId=order["orderId"])
    assert (await balances(api))["USDT"] == (D("10000"), D(0))


async def test_resting_sell_locks_base_and_cancel_releases_it(api, sim):
    sim.control("balances", {"spot": {"BTC": "0.5"}})
    order = await api("create_order", **limit_order("SELL", "0.2", "99000"))
    after = await balances(api)
    assert after["BTC"] == (D("0.3"), D("0.2")) and after["USDT"] == (D("10000"), D(0))
    await api("cancel_all_open_orders", symbol=SYMBOL)
    assert (await balances(api))["BTC"] == (D("0.5"), D(0))
    assert (await api("get_order", symbol=SYMBOL, orderId=order["orderId"]))["status"] == "CANCELED"


async def test_stop_orders_lock_until_cancelled(api, sim):
    sim.control("balances", {"spot": {"BTC": "0.5"}})
    stop = await api("create_order", symbol=SYMBOL, side="SELL", type="STOP_LOSS", quantity="0.1",
                     stopPrice="90000")
    limit = await api("create_order", symbol=SYMBOL, side="BUY", type="STOP_LOSS_LIMIT", quantity="0.01",
                      stopPrice="96000", price="96500", timeInForce="GTC")
    after = await balances(api)
    assert after["BTC"] == (D("0.4"), D("0.1")) and after["USDT"] == (D("10000") - D("965"), D("965"))
    for order in (stop, limit):
        await api("cancel_order", symbol=SYMBOL, orderId=order["orderId"])
    assert await balances(api) == {"BTC": (D("0.5"), D(0)), "USDT": (D("10000"), D(0))}


async def test_market_buy_pays_quote_and_receives_base_minus_commission(api):
    order = await api("create_order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.05")
    quote, qty = D(order["cummulativeQuoteQty"]), D(order["executedQty"])
    commission = sum((D(f["commission"]) for f in order["fills"]), D(0))
    assert all(f["commissionAsset"] == "BTC" and D(f["commission"]) == fee(D(f["qty"])) for f in order["fills"])
    assert await balances(api) == {"BTC": (qty - commission, D(0)), "USDT": (D("10000") - quote, D(0))}


async def test_market_sell_pays_base_and_receives_quote_minus_commission(api, sim):
    sim.control("balances", {"spot": {"BTC": "1"}})
    order = await api("create_order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.05")
    quote = D(order["cummulativeQuoteQty"])
    commission = sum((D(f["commission"]) for f in order["fills"]), D(0))
    assert all(f["commissionAsset"] == "USDT" and D(f["commission"]) == fee(D(f["qty"]) * D(f["price"]))
               for f in order["fills"])
    assert await balances(api) == {"BTC": (D("0.95"), D(0)), "USDT": (D("10000") + quote - commission, D(0))}


async def test_maker_fill_moves_locked_quote_into_base(api, sim):
    await api("create_order", **limit_order("BUY", "0.01", "94000"))
    sim.control("price", {"symbol": SYMBOL, "price": "93000"})
    (trade,) = await api("get_my_trades", symbol=SYMBOL)
    assert D(trade["commission"]) == D("0.00001") and trade["commissionAsset"] == "BTC"
    assert await balances(api) == {"BTC": (D("0.00999"), D(0)), "USDT": (D("9060"), D(0))}


async def test_maker_fill_of_a_sell_moves_locked_base_into_quote(api, sim):
    sim.control("balances", {"spot": {"BTC": "0.1"}})
    await api("create_order", **limit_order("SELL", "0.1", "96000"))
    sim.control("price", {"symbol": SYMBOL, "price": "96500"})
    assert await balances(api) == {"BTC": (D(0), D(0)), "USDT": (D("10000") + D("9600") - D("9.6"), D(0))}


async def test_partial_fill_keeps_the_remainder_locked_until_cancel(api, sim):
    sim.control("balances", {"spot": {"USDT": "200000"}})
    order = await api("create_order", **limit_order("BUY", "1", "95003"))
    assert order["status"] == "PARTIALLY_FILLED"
    filled, paid = D(order["executedQty"]), D(order["cummulativeQuoteQty"])
    rest_locked = (1 - filled) * D("95003")
    assert (await balances(api))["USDT"] == (D("200000") - paid - rest_locked, rest_locked)
    cancelled = await api("cancel_order", symbol=SYMBOL, orderId=order["orderId"])
    assert cancelled["status"] == "CANCELED" and D(cancelled["executedQty"]) == filled
    after = await balances(api)
    assert after["USDT"] == (D("200000") - paid, D(0)) and after["BTC"][0] == filled - fee(filled)


async def test_partial_fill_then_maker_fill_of_the_rest(api, sim):
    sim.control("balances", {"spot": {"USDT": "200000"}})
    order = await api("create_order", **limit_order("BUY", "1", "95003"))
    paid = D(order["cummulativeQuoteQty"])
    sim.control("price", {"symbol": SYMBOL, "price": "94000"})
    done = await api("get_order", symbol=SYMBOL, orderId=order["orderId"])
    assert done["status"] == "FILLED" and D(done["executedQty"]) == 1
    rest = 1 - D(order["executedQty"])
    assert D(done["cummulativeQuoteQty"]) == paid + rest * D("95003")
    assert (await balances(api))["USDT"] == (D("200000") - D(done["cummulativeQuoteQty"]), D(0))


@pytest.mark.parametrize("params", [
    limit_order("BUY", "0.2", "90000"),
    dict(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.2"),
    dict(symbol=SYMBOL, side="BUY", type="MARKET", quoteOrderQty="10001"),
    dict(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.001"),
    limit_order("SELL", "0.001", "96000"),
    dict(symbol=SYMBOL, side="SELL", type="STOP_LOSS", quantity="0.001", stopPrice="90000"),
], ids=["limit-buy", "market-buy", "quote-buy", "market-sell", "limit-sell", "stop-sell"])
async def test_insufficient_balance_is_rejected_and_changes_nothing(api, params):
    err = await rejects(api, "create_order", **params)
    assert (err.status_code, err.code, err.message) == (400, -2010, INSUFFICIENT)
    assert await balances(api) == {"USDT": (D("10000"), D(0))}
    assert await api("get_all_orders", symbol=SYMBOL) == []


async def test_locked_funds_are_not_spendable(api):
    await api("create_order", **limit_order("BUY", "0.1", "90000"))  # locks 9000 of 10000
    err = await rejects(api, "create_order", **limit_order("BUY", "0.02", "90000"))
    assert (err.code, err.message) == (-2010, INSUFFICIENT)


async def test_duplicate_client_order_id_of_an_open_order(api):
    first = await api("create_order", **limit_order("BUY", "0.01", "90000", newClientOrderId="dup-1"))
    err = await rejects(api, "create_order", **limit_order("BUY", "0.01", "90001", newClientOrderId="dup-1"))
    assert (err.status_code, err.code, err.message) == (400, -2010, "Duplicate order sent.")
    assert len(await api("get_open_orders", symbol=SYMBOL)) == 1
    await api("cancel_order", symbol=SYMBOL, orderId=first["orderId"])
    again = await api("create_order", **limit_order("BUY", "0.01", "90001", newClientOrderId="dup-1"))
    assert again["clientOrderId"] == "dup-1" and again["orderId"] != first["orderId"]
    assert (await api("get_order", symbol=SYMBOL, origClientOrderId="dup-1"))["orderId"] == again["orderId"]
