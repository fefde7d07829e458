"""Account tools over stdio: binance_account_info, binance_spot_balances, binance_portfolio_account,
binance_futures_positions, binance_account_status."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_dec_str(value: object) -> Decimal:
    """A decimal string (never a float, never exponent notation)."""
    assert isinstance(value, str), value
    assert "e" not in value.lower(), value
    return Decimal(value)


async def test_account_info_summarises_the_spot_account(paper: Paper):
    paper.balances(spot={"BTC": "0.5", "ETH": "0"})
    info = await paper.call("binance_account_info")
    assert info["canTrade"] is True and info["canWithdraw"] is True and info["canDeposit"] is True
    assert "SPOT" in info["permissions"]
    raw = paper.signed("/api/v3/account")
    assert set(info["commissionRates"]) == {"maker", "taker"}
    for k in ("maker", "taker"):
        assert assert_dec_str(info["commissionRates"][k]) == D(raw["commissionRates"][k])
    assert info["commissionRates"]["maker"] == "0.001"
    assert info["nonzeroBalances"] == 2  # USDT and BTC; the zero ETH row does not count
    # Left out: accountType (SPOT on this endpoint) and updateTime (when the account last changed).
    assert set(info) == {"canTrade", "canWithdraw", "canDeposit", "permissions", "commissionRates",
                         "nonzeroBalances"}


async def test_account_info_failures(paper: Paper):
    await paper.invalid("binance_account_info", {"verbose": True}, "verbose", "unknown argument")
    # Binance overloaded (HTTP 503, code -1008): the error says so and that a retry later is the remedy.
    paper.sim("faults", {"kind": "error_5xx", "path": "/api/v3/account", "count": 3, "status": 503})
    text = await paper.rejected("binance_account_info", {}, -1008, "Reading the spot account", "retry",
                                fault="error_5xx")
    assert "overloaded" in text


async def test_account_info_survives_clock_drift(paper: Paper):
    """A server clock 20 s ahead: the first signed request gets -1021, the adapter resyncs once and retries."""
    paper.sim("clock", {"skew_ms": 20000})
    try:
        before = paper.last_seq()
        info = await paper.call("binance_account_info")
        assert info["canTrade"] is True
        codes = [(e["path"], e["code"]) for e in paper.requests(before)]
        assert ("/api/v3/account", -1021) in codes and codes[-1] == ("/api/v3/account", None), codes
        status = await paper.call("binance_account_status")
        assert abs(status["clockDriftMs"] - 20000) < 1000, status
    finally:
        paper.sim("clock", {"skew_ms": 0})
        await paper.call("binance_account_status")  # resync the server's clock offset for the next tests


async def test_spot_balances_track_orders(paper: Paper):
    paper.balances(spot={"BTC": "0.12345678", "ETH": "0"})
    bal = await paper.call("binance_spot_balances")
    assert [b["asset"] for b in bal["balances"]] == ["BTC", "USDT"]  # sorted, zero ETH removed
    assert set(bal) == {"balances"}  # no count: the list says how many
    btc = bal["balances"][0]
    assert btc == {"asset": "BTC", "free": "0.12345678", "locked": "0", "total": "0.12345678"}  # full precision

    # A resting limit buy locks quote: free goes down, locked up, total unchanged.
    order = await paper.call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                          "quantity": "0.01", "price": "90000"})
    assert order["status"] == "NEW"
    usdt = (await paper.call("binance_spot_balances", {"asset": "usdt"}))["balances"]
    assert usdt == [{"asset": "USDT", "free": "9100", "locked": "900", "total": "10000"}]
    assert paper.spot_balance("USDT") == (Decimal("9100"), Decimal("900"))

    # A market buy moves both assets by the fill and its commission (paid in the base asset).
    fill = await paper.call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                         "quantity": "0.001"})
    cost = sum(D(f["price"]) * D(f["qty"]) for f in fill["fills"])
    fee = sum(D(f["commission"]) for f in fill["fills"])
    after = {b["asset"]: b for b in (await paper.call("binance_spot_balances"))["balances"]}
    assert D(after["USDT"]["free"]) == Decimal("9100") - cost
    assert D(after["BTC"]["free"]) == Decimal("0.12345678") + Decimal("0.001") - fee
    assert D(after["USDT"]["total"]) == D(after["USDT"]["free"]) + D(after["USDT"]["locked"])


async def test_spot_balances_failures(paper: Paper):
    await paper.invalid("binance_spot_balances", {"asset": "US-DT"}, "asset")
    await paper.invalid("binance_spot_balances", {"asset": ""}, "asset")
    # A gateway answering HTML instead of JSON is "unavailable", not a Binance rejection.
    paper.sim("faults", {"kind": "non_json", "path": "/api/v3/account", "count": 3, "status": 502})
    text = await paper.error("binance_spot_balances")
    assert text.startswith("EXCHANGE_UNAVAILABLE: Reading spot balances"), text
    assert "not Binance JSON" in text and "binance_account_status" in text


async def test_portfolio_account_reflects_a_position(paper: Paper):
    flat = await paper.call("binance_portfolio_account")
    assert flat["totalWalletBalance"] == "10000" and flat["availableBalance"] == "10000"
    assert flat["totalInitialMargin"] == "0" and flat["marginRatioPct"] == "0"
    assert flat["maxWithdrawAmount"] == "10000"
    assert flat["assets"] == [{"asset": "USDT", "walletBalance": "10000", "unrealizedProfit": "0",
                               "availableBalance": "10000"}]

    await paper.call("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 10})
    order = await paper.call("binance_futures_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                             "quantity": "0.05"})
    entry = D(order["avgPrice"])
    mark = D(paper.public("/fapi/v1/premiumIndex", symbol="BTCUSDT")["markPrice"])
    acc = await paper.call("binance_portfolio_account")
    fee = (entry * Decimal("0.05") * Decimal("0.0005")).quantize(Decimal("0.00000001"))
    assert D(acc["totalWalletBalance"]) == Decimal(10000) - fee
    assert D(acc["totalUnrealizedProfit"]) == ((mark - entry) * Decimal("0.05")).quantize(Decimal("0.00000001"))
    # No open order: all the initial margin is the position's.
    assert D(acc["totalInitialMargin"]) == (mark * Decimal("0.05") / 10).quantize(Decimal("0.00000001"))
    assert D(acc["totalMarginBalance"]) == D(acc["totalWalletBalance"]) + D(acc["totalUnrealizedProfit"])
    assert D(acc["availableBalance"]) == D(acc["totalMarginBalance"]) - D(acc["totalInitialMargin"])
    raw = paper.signed("/fapi/v2/account")
    assert D(acc["totalMaintMargin"]) == D(raw["totalMaintMargin"]) > 0
    assert D(acc["marginRatioPct"]) == (D(raw["totalMaintMargin"]) / D(raw["totalMarginBalance"]) * 100
                                        ).quantize(Decimal("0.01"))


async def test_portfolio_account_failures(paper: Paper):
    await paper.invalid("binance_portfolio_account", {"asset": "USDT"}, "asset", "unknown argument")
    paper.sim("faults", {"kind": "error_5xx", "path": "/fapi/v2/account", "count": 3, "status": 500})
    await paper.rejected("binance_portfolio_account", {}, -1001, "Reading the futures account", "retry",
                         fault="error_5xx")


async def test_futures_positions_lists_open_positions_only(paper: Paper):
    assert await paper.call("binance_futures_positions") == {"positions": []}
    # An open order alone makes the exchange return a zero-size row: it is not a position.
    await paper.call("binance_futures_place_order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.1", "price": "3400"})
    assert (await paper.call("binance_futures_positions"))["positions"] == []

    await paper.call("binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 5})
    await paper.call("binance_futures_set_margin_type", {"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    order = await paper.call("binance_futures_place_order", {"symbol": "btcusdt", "side": "SELL", "type": "MARKET",
                                                             "quantity": "0.02"})
    pos = await paper.call("binance_futures_positions", {"symbol": "BTCUSDT"})
    assert len(pos["positions"]) == 1
    p = pos["positions"][0]
    raw = paper.signed("/fapi/v3/positionRisk", symbol="BTCUSDT")[0]
    assert p["symbol"] == "BTCUSDT" and p["positionSide"] == "BOTH"
    assert p["positionAmt"] == "-0.02" and D(p["entryPrice"]) == D(order["avgPrice"])  # signed: a short
    assert D(p["markPrice"]) == D(raw["markPrice"])
    assert D(p["unrealizedProfit"]) == D(raw["unRealizedProfit"])
    assert D(p["liquidationPrice"]) == D(raw["liquidationPrice"]) > D(p["entryPrice"])  # a short dies above
    assert D(p["notional"]) == D(raw["notional"]) < 0
    assert p["leverage"] == 5 and p["marginType"] == "ISOLATED"
    everything = await paper.call("binance_futures_positions")
    assert [q["symbol"] for q in everything["positions"]] == ["BTCUSDT"]


async def test_futures_positions_failures(paper: Paper):
    await paper.invalid("binance_futures_positions", {"symbol": "BTC/USDT"}, "symbol")
    await paper.unknown_symbol("binance_futures_positions", {"symbol": "XRPUSDT"}, "Unknown symbol")


async def test_account_status_reports_the_paper_exchange(paper: Paper):
    before = paper.last_seq()
    local_before = int(time.time() * 1000)
    st = await paper.call("binance_account_status")
    assert st["connected"] is True and "error" not in st  # a field that is not set is left out
    assert st["exchange"] == "paper" and st["host"] == paper.host
    assert abs(st["clockDriftMs"]) < 1000
    assert local_before - 1000 <= st["serverTime"] <= int(time.time() * 1000) + 1000
    paths = [e["path"] for e in paper.requests(before)]
    assert paths == ["/api/v3/time"]  # the server time alone answers reachability and clock drift


async def test_account_status_failures(paper: Paper):
    await paper.invalid("binance_account_status", {"deep": 1}, "deep")
    # An exchange that fails the time request: still an answer, connected=false with the reason.
    paper.sim("faults", {"kind": "error_5xx", "path": "/api/v3/time", "count": 1, "status": 503})
    st = await paper.call("binance_account_status")
    assert st["connected"] is False and "serverTime" not in st and "clockDriftMs" not in st
    assert "-1008" in st["error"] and "Time sync" in st["error"]
    assert (await paper.call("binance_account_status"))["connected"] is True  # and it recovers
