"""USD-M futures account views, positions, leverage, margin type and position mode through python-binance."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from binance.exceptions import BinanceAPIException

from tests.simulator.helpers import api_error

BTC = {"symbol": "BTCUSDT"}
TAKER = D("0.0005")


def set_futures(sim, price: str | None = None, mark: str | None = None, symbol: str = "BTCUSDT") -> None:
    body = {"symbol": symbol, "market": "futures"}
    if price is not None:
        body["price"] = price
        body["mark"] = mark or price
    elif mark is not None:
        body["mark"] = mark
    sim.control("price", body)


@pytest.fixture
def btc(sim):
    set_futures(sim, "95000")  # best bid 95000.0, best ask 95000.1
    return sim


def rows_by_side(client, symbol: str = "BTCUSDT") -> dict[str, dict]:
    return {r["positionSide"]: r for r in client.futures_position_information(symbol=symbol)}


def symbol_config(client, symbol: str) -> dict:
    (row,) = client._request_futures_api("get", "symbolConfig", True, version=1, data={"symbol": symbol})
    return row


def position_risk_v2(client, symbol: str) -> list[dict]:
    return client._request_futures_api("get", "positionRisk", True, version=2, data={"symbol": symbol})


def usdt_wallet(client) -> D:
    return next(D(b["balance"]) for b in client.futures_account_balance() if b["asset"] == "USDT")


# -- account and balance -------------------------------------------------------------------------------------


def test_fresh_account_balance_and_positions(client, btc):
    acct = client.futures_account()
    assert D(acct["totalWalletBalance"]) == D(acct["availableBalance"]) == D("10000")
    assert D(acct["totalUnrealizedProfit"]) == 0 and acct["canTrade"] is True
    assert [a["asset"] for a in acct["assets"]] == ["USDT"]
    assert {p["symbol"] for p in acct["positions"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert all(D(p["positionAmt"]) == 0 and p["positionSide"] == "BOTH" for p in acct["positions"])
    (bal,) = client.futures_account_balance()
    assert bal["asset"] == "USDT" and D(bal["balance"]) == D(bal["availableBalance"]) == D("10000")
    assert client.futures_position_information() == []
    paths = [r["path"] for r in btc.control("requests")[-3:]]
    assert paths == ["/fapi/v2/account", "/fapi/v3/balance", "/fapi/v3/positionRisk"]


def test_position_information_lists_only_symbols_with_a_position_or_open_orders(client, btc):
    client.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1",
                                price="3000")
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    rows = {r["symbol"]: r for r in client.futures_position_information()}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}
    assert D(rows["ETHUSDT"]["positionAmt"]) == 0 and D(rows["ETHUSDT"]["openOrderInitialMargin"]) > 0
    assert D(rows["BTCUSDT"]["positionAmt"]) == D("0.01")
    assert "leverage" not in rows["BTCUSDT"] and "marginType" not in rows["BTCUSDT"]  # v3 has neither


@pytest.mark.parametrize("side, amt, entry", [("BUY", "0.01", "95000.1"), ("SELL", "-0.01", "95000.0")])
def test_entry_mark_and_unrealised_pnl_follow_the_mark_price(client, btc, side, amt, entry):
    client.futures_create_order(**BTC, side=side, type="MARKET", quantity="0.01")
    set_futures(btc, mark="96000")
    row = rows_by_side(client)["BOTH"]
    assert D(row["positionAmt"]) == D(amt) and D(row["entryPrice"]) == D(entry)
    assert D(row["markPrice"]) == D("96000")
    upnl = (D("96000") - D(entry)) * D(amt)
    assert D(row["unRealizedProfit"]) == upnl and D(row["notional"]) == D("96000") * D(amt)
    assert D(client.futures_account()["totalUnrealizedProfit"]) == upnl
    assert D(client.futures_account_balance()[0]["crossUnPnl"]) == upnl


def test_liquidation_price_of_a_leveraged_position(client, btc):
    btc.control("balances", {"futures": {"USDT": "1000"}, "replace": True})
    client.futures_change_leverage(**BTC, leverage=50)
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.4")
    row = rows_by_side(client)["BOTH"]
    entry, liq = D(row["entryPrice"]), D(row["liquidationPrice"])
    assert 0 < liq < entry and entry - liq < entry / 20  # ~1000 USDT of margin on 38000 of notional
    # At the liquidation price the margin balance has shrunk to the maintenance margin.
    set_futures(btc, mark=str(liq.quantize(D("0.01"))))
    acct = client.futures_account()
    assert abs(D(acct["totalMarginBalance"]) - D(acct["totalMaintMargin"])) < D("0.01")
    # More wallet pushes a long's liquidation price down.
    btc.control("balances", {"futures": {"USDT": "1500"}, "replace": False})
    assert D(rows_by_side(client)["BOTH"]["liquidationPrice"]) < liq


def test_liquidation_price_of_a_short_is_above_entry(client, btc):
    btc.control("balances", {"futures": {"USDT": "1000"}, "replace": True})
    client.futures_change_leverage(**BTC, leverage=50)
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.4")
    row = rows_by_side(client)["BOTH"]
    entry, liq = D(row["entryPrice"]), D(row["liquidationPrice"])
    assert entry < liq < entry * D("1.05")
    set_futures(btc, mark=str(liq.quantize(D("0.01"))))
    acct = client.futures_account()
    assert abs(D(acct["totalMarginBalance"]) - D(acct["totalMaintMargin"])) < D("0.01")
    btc.control("balances", {"futures": {"USDT": "1500"}, "replace": False})
    assert D(rows_by_side(client)["BOTH"]["liquidationPrice"]) > liq


def test_wallet_is_start_plus_realised_pnl_minus_commissions(client, btc):
    start = usdt_wallet(client)
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.03")    # open long at 95000.1
    set_futures(btc, "96000")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01")   # reduce at 96000.0
    set_futures(btc, "94000")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.05")   # flip short at 94000.0
    set_futures(btc, "93000")
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.03")    # close at 93000.1
    assert client.futures_position_information() == []
    trades = client.futures_account_trades(**BTC)
    realised = sum((D(t["realizedPnl"]) for t in trades), D(0))
    commission = sum((D(t["commission"]) for t in trades), D(0))
    expected_realised = ((D("96000.0") - D("95000.1")) * D("0.01") + (D("94000.0") - D("95000.1")) * D("0.02")
                         + (D("94000.0") - D("93000.1")) * D("0.03"))
    expected_commission = TAKER * (D("95000.1") * D("0.03") + D("96000.0") * D("0.01") + D("94000.0") * D("0.05")
                                   + D("93000.1") * D("0.03"))
    assert realised == expected_realised and commission == expected_commission
    assert usdt_wallet(client) == start + realised - commission
    acct = client.futures_account()
    assert D(acct["totalWalletBalance"]) == D(acct["availableBalance"]) == start + realised - commission


def test_open_orders_reserve_margin(client, btc):
    client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="2", price="94000")
    acct = client.futures_account()
    assert D(acct["totalOpenOrderInitialMargin"]) == D("94000") * 2 / 20
    assert D(acct["availableBalance"]) == D("10000") - D("9400")
    with pytest.raises(BinanceAPIException) as info:
        client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.2",
                                    price="94000")
    assert info.value.code == -2019


# -- leverage, brackets, margin type ------------------------------------------------------------------------


def test_leverage_is_capped_by_the_first_bracket(client, btc):
    (sol,) = [b for b in client.futures_leverage_bracket() if b["symbol"] == "SOLUSDT"]
    assert sol["brackets"][0]["initialLeverage"] == 75
    out = client.futures_change_leverage(symbol="SOLUSDT", leverage=75)
    assert out == {"leverage": 75, "maxNotionalValue": str(sol["brackets"][0]["notionalCap"]), "symbol": "SOLUSDT"}
    for bad in (76, 0):
        err = api_error(client.futures_change_leverage, symbol="SOLUSDT", leverage=bad)
        assert err.code == -4028 and str(bad) in err.message
    assert api_error(client.futures_change_leverage, **BTC, leverage=126).code == -4028
    assert symbol_config(client, "SOLUSDT")["leverage"] == 75


def test_max_notional_grows_as_leverage_falls(client, btc):
    brackets = client.futures_leverage_bracket(**BTC)["brackets"]
    for lev in (125, 100, 20, 1):
        out = client.futures_change_leverage(**BTC, leverage=lev)
        cap = max(b["notionalCap"] for b in brackets if b["initialLeverage"] >= lev)
        assert D(out["maxNotionalValue"]) == cap
        v2 = position_risk_v2(client, "BTCUSDT")[0]
        assert v2["leverage"] == str(lev) and D(v2["maxNotionalValue"]) == cap


def test_leverage_bracket_with_and_without_symbol(client, btc):
    one = client.futures_leverage_bracket(**BTC)
    assert one["symbol"] == "BTCUSDT" and one["brackets"][0]["bracket"] == 1
    floors = [b["notionalFloor"] for b in one["brackets"]]
    caps = [b["notionalCap"] for b in one["brackets"]]
    assert floors[1:] == caps[:-1] and floors[0] == 0
    assert [b["symbol"] for b in client.futures_leverage_bracket()] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_margin_type_changes_and_its_errors(client, btc):
    assert api_error(client.futures_change_margin_type, **BTC, marginType="CROSSED").code == -4046
    order = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                        price="94000")
    assert api_error(client.futures_change_margin_type, **BTC, marginType="ISOLATED").code == -4047
    client.futures_cancel_order(**BTC, orderId=order["orderId"])
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01")
    assert api_error(client.futures_change_margin_type, **BTC, marginType="ISOLATED").code == -4048
    out = client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")
    assert out["code"] == 200
    assert symbol_config(client, "ETHUSDT")["marginType"] == "ISOLATED"
    assert position_risk_v2(client, "ETHUSDT")[0]["marginType"] == "isolated"
    assert position_risk_v2(client, "BTCUSDT")[0]["marginType"] == "cross"


def test_symbol_config_and_position_risk_v2_list_every_symbol(client, btc):
    client.futures_change_leverage(symbol="ETHUSDT", leverage=10)
    rows = client._request_futures_api("get", "symbolConfig", True, version=1, data={})
    assert {r["symbol"]: r["leverage"] for r in rows} == {"BTCUSDT": 20, "ETHUSDT": 10, "SOLUSDT": 20}
    v2 = client._request_futures_api("get", "positionRisk", True, version=2, data={})
    assert {r["symbol"] for r in v2} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


# -- position mode -----------------------------------------------------------------------------------------


def test_one_way_mode_rejects_long_and_short_sides(client, btc):
    assert client.futures_get_position_mode() == {"dualSidePosition": False}
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="MARKET", quantity="0.01",
                    positionSide="LONG")
    assert err.code == -4061


def test_hedge_mode_keeps_long_and_short_apart(client, btc):
    assert client.futures_change_position_mode(dualSidePosition="true")["code"] == 200
    assert client.futures_get_position_mode() == {"dualSidePosition": True}
    assert api_error(client.futures_change_position_mode, dualSidePosition="true").code == -4059
    for kwargs in ({}, {"positionSide": "BOTH"}):
        assert api_error(client.futures_create_order, **BTC, side="BUY", type="MARKET", quantity="0.01",
                         **kwargs).code == -4061
    err = api_error(client.futures_create_order, **BTC, side="BUY", type="MARKET", quantity="0.01",
                    positionSide="LONG", reduceOnly="true")
    assert err.code == -1106
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.02", positionSide="LONG")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01", positionSide="SHORT")
    rows = rows_by_side(client)
    assert set(rows) == {"LONG", "SHORT"}
    assert D(rows["LONG"]["positionAmt"]) == D("0.02") and D(rows["SHORT"]["positionAmt"]) == D("-0.01")
    assert api_error(client.futures_change_position_mode, dualSidePosition="false").code == -4068
    # Closing a side is a SELL on LONG (or a BUY on SHORT); more than the side holds is rejected.
    assert api_error(client.futures_create_order, **BTC, side="SELL", type="MARKET", quantity="0.03",
                     positionSide="LONG").code == -2022
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.02", positionSide="LONG")
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01", positionSide="SHORT")
    assert client.futures_position_information() == []
    assert client.futures_change_position_mode(dualSidePosition="false")["code"] == 200


def test_hedge_mode_closing_limit_never_flips_a_side(client, btc):
    client.futures_change_position_mode(dualSidePosition="true")
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01", positionSide="LONG")
    resting = client.futures_create_order(**BTC, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                          price="96000", positionSide="LONG")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01", positionSide="LONG")
    set_futures(btc, "96100")  # the resting close now has nothing left to close
    assert client.futures_get_order(**BTC, orderId=resting["orderId"])["status"] in ("EXPIRED", "CANCELED")
    assert client.futures_position_information(**BTC) == []


# -- AsyncClient ---------------------------------------------------------------------------------------------


async def test_async_account_views(async_client, btc):
    lev = await async_client.futures_change_leverage(**BTC, leverage=10)
    assert lev["leverage"] == 10
    await async_client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.1")
    (row,) = await async_client.futures_position_information(**BTC)
    assert D(row["positionInitialMargin"]) == D(row["notional"]) / 10
    acct = await async_client.futures_account()
    commission = D("95000.1") * D("0.1") * TAKER
    assert D(acct["totalWalletBalance"]) == D("10000") - commission
    assert D(acct["totalPositionInitialMargin"]) == D(row["positionInitialMargin"])
    (bal,) = await async_client.futures_account_balance()
    assert D(bal["balance"]) == D("10000") - commission
    assert (await async_client.futures_get_position_mode())["dualSidePosition"] is False
