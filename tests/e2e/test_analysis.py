"""The six analysis tools over stdio, each checked against numbers this test computes itself (with Decimal)
from the simulator's own data: exchangeInfo filters, the order book, tickers, premium index and the account."""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import pytest

from tests.e2e.conftest import D, Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC, ETH = "BTCUSDT", "ETHUSDT"


def filters(paper: Paper, market: str, symbol: str) -> dict:
    path = "/fapi/v1/exchangeInfo" if market == "futures" else "/api/v3/exchangeInfo"
    (row,) = [s for s in paper.public(path)["symbols"] if s["symbol"] == symbol]
    return {f["filterType"]: f for f in row["filters"]}


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def nearest(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


# -- 30 binance_calculate_position_size ------------------------------------------------------------
@pytest.mark.parametrize("market,symbol,risk,entry,stop,lev", [
    ("spot", BTC, "100", "97000", "95000", 1),
    ("futures", BTC, "250", "97000", "98234.5", 10),  # a short: the stop is above entry
    ("futures", "SOLUSDT", "37", "180", "171.3", 3),  # step size 1
    ("spot", BTC, "1", "97000", "50000", 1),  # too small to meet the min notional
])
async def test_position_size(paper: Paper, market, symbol, risk, entry, stop, lev):
    r = await paper.call("binance_calculate_position_size", {"symbol": symbol, "riskAmount": risk, "entryPrice": entry,
                                                             "stopLossPrice": stop, "leverage": lev,
                                                             "market": market})
    f = filters(paper, market, symbol)
    step, min_qty = D(f["LOT_SIZE"]["stepSize"]), D(f["LOT_SIZE"]["minQty"])
    min_notional = D(f["MIN_NOTIONAL"]["notional"]) if market == "futures" else D(f["NOTIONAL"]["minNotional"])
    per_unit = abs(D(entry) - D(stop))
    qty = floor_to(D(risk) / per_unit, step)
    assert D(r["quantity"]) == qty and qty * per_unit <= D(risk) < (qty + step) * per_unit
    assert D(r["notional"]) == qty * D(entry)
    assert D(r["marginRequired"]) == qty * D(entry) / lev
    assert D(r["riskAtStop"]) == qty * per_unit
    assert r["meetsMinQty"] is (qty >= min_qty)
    assert r["meetsMinNotional"] is (qty * D(entry) >= min_notional)
    # Nothing the call already said (symbol, market, the side its stop implies) or the rules repeat.
    assert set(r) == {"quantity", "notional", "marginRequired", "riskAtStop", "meetsMinQty", "meetsMinNotional"}


async def test_position_size_failures(paper: Paper):
    tool = "binance_calculate_position_size"
    base = {"symbol": BTC, "riskAmount": "100", "entryPrice": "97000", "stopLossPrice": "95000"}
    await paper.invalid(tool, base | {"stopLossPrice": "97000"}, "stopLossPrice must differ")
    await paper.invalid(tool, base | {"riskAmount": "0"}, "riskAmount")
    await paper.invalid(tool, base | {"leverage": 126}, "leverage")
    await paper.invalid(tool, base | {"market": "options"}, "market")
    text = await paper.error(tool, base | {"symbol": "XRPUSDT", "market": "futures"})
    assert text.startswith("UNKNOWN_SYMBOL: XRPUSDT is not a futures symbol"), text


# -- 31 binance_analyze_portfolio_risk -------------------------------------------------------------
async def test_portfolio_risk_against_the_account(paper: Paper):
    paper.balances(spot={"BTC": "0.5", "ETH": "2"})
    await paper.call("binance_futures_change_leverage", {"symbol": BTC, "leverage": 1})
    await paper.call("binance_futures_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                     "quantity": "0.05"})
    await paper.call("binance_futures_change_leverage", {"symbol": ETH, "leverage": 5})
    await paper.call("binance_futures_place_order", {"symbol": ETH, "side": "SELL", "type": "MARKET",
                                                     "quantity": "1"})
    paper.set_price(BTC, "98500")  # BTC up: the long wins
    paper.set_price(ETH, "3560")  # ETH up: the short loses
    r = await paper.call("binance_analyze_portfolio_risk")

    acct = paper.signed("/fapi/v2/account")
    rows = {p["symbol"]: p for p in paper.signed("/fapi/v3/positionRisk") if D(p["positionAmt"])}
    lev = {BTC: 1, ETH: 5}
    upnl = {s: (D(p["markPrice"]) - D(p["entryPrice"])) * D(p["positionAmt"]) for s, p in rows.items()}
    initial = sum(abs(D(p["positionAmt"])) * D(p["markPrice"]) / lev[s] for s, p in rows.items())
    margin_balance = D(acct["totalWalletBalance"]) + sum(upnl.values())
    assert D(acct["totalInitialMargin"]) == initial.quantize(Decimal("1E-8"))
    usage = (initial.quantize(Decimal("1E-8")) / margin_balance.quantize(Decimal("1E-8")) * 100).quantize(
        Decimal("0.01"))
    assert D(r["marginUsagePct"]) == usage and Decimal(50) <= usage < Decimal(80)
    assert r["riskLevel"] == "MEDIUM"
    assert D(r["totalUnrealizedProfit"]) == sum(upnl.values()).quantize(Decimal("1E-8"))
    assert (r["winners"], r["losers"]) == (1, 1) and upnl[BTC] > 0 > upnl[ETH]
    by_symbol = {p["symbol"]: p for p in r["positions"]}
    for s, p in rows.items():
        mark, liq = D(p["markPrice"]), D(p["liquidationPrice"])
        got = by_symbol[s]
        assert got["positionSide"] == p["positionSide"] == "BOTH"
        assert D(got["unrealizedProfit"]) == upnl[s].quantize(Decimal("1E-8"))
        expected = (abs(mark - liq) / mark * 100).quantize(Decimal("0.01")) if liq > 0 else None
        assert (D(got["distanceToLiquidationPct"]) if "distanceToLiquidationPct" in got else None) == expected
    assert "distanceToLiquidationPct" in by_symbol[ETH]
    assert r["spotHoldings"] == 3  # USDT, BTC, ETH


async def test_portfolio_risk_levels_move_with_usage(paper: Paper):
    flat = await paper.call("binance_analyze_portfolio_risk")
    assert (flat["marginUsagePct"], flat["riskLevel"], flat["positions"], flat["spotHoldings"]) == (
        "0", "LOW", [], 1)
    await paper.call("binance_futures_change_leverage", {"symbol": BTC, "leverage": 1})
    await paper.call("binance_futures_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                     "quantity": "0.09"})
    high = await paper.call("binance_analyze_portfolio_risk")
    assert D(high["marginUsagePct"]) >= 80 and high["riskLevel"] == "HIGH"
    await paper.invalid("binance_analyze_portfolio_risk", {"detail": True}, "unknown argument")


async def test_portfolio_risk_exchange_failure(paper: Paper):
    paper.sim("faults", {"kind": "error_5xx", "path": "/fapi/v3/positionRisk", "count": 3, "status": 503})
    await paper.rejected("binance_analyze_portfolio_risk", {}, -1008, "Reading futures positions",
                         fault="error_5xx")


# -- 32 binance_compare_spot_futures_price --------------------------------------------------------
@pytest.mark.parametrize("asked,symbol,futures_price,premium", [
    ("BTC", BTC, "96500", "DISCOUNT"),
    ("ethusdt", ETH, "3551.37", "PREMIUM"),
    ("BTCUSDT", BTC, "97000", "FLAT"),
])
async def test_compare_spot_futures(paper: Paper, asked, symbol, futures_price, premium):
    paper.set_price(symbol, futures_price, market="futures")
    r = await paper.call("binance_compare_spot_futures_price", {"symbol": asked})
    spot = D(paper.public("/api/v3/ticker/price", symbol=symbol)["price"])
    fut = D(paper.public("/fapi/v2/ticker/price", symbol=symbol)["price"])
    prem = paper.public("/fapi/v1/premiumIndex", symbol=symbol)
    assert fut == D(futures_price)
    assert r["symbol"] == symbol and D(r["spotPrice"]) == spot and D(r["futuresPrice"]) == fut
    assert D(r["basis"]) == fut - spot
    assert D(r["basisPct"]) == ((fut - spot) / spot * 100).quantize(Decimal("0.0001"))
    assert r["premium"] == premium
    assert D(r["fundingRate"]) == D(prem["lastFundingRate"])


async def test_compare_failures(paper: Paper):
    await paper.invalid("binance_compare_spot_futures_price", {"symbol": "BTC!"}, "symbol")
    await paper.invalid("binance_compare_spot_futures_price", {}, "symbol")
    await paper.unknown_symbol("binance_compare_spot_futures_price", {"symbol": "ETHBTC"})  # no perpetual


# -- 33 binance_calculate_funding_cost ------------------------------------------------------------
@pytest.mark.parametrize("size,hours,rate", [("0.5", "24", None), ("-2", "8.5", None), ("-0.25", "100", "0.0003")])
async def test_funding_cost(paper: Paper, size, hours, rate):
    paper.set_price(BTC, market="futures", mark="97500")  # premium over the index: a positive funding rate
    args = {"symbol": BTC, "positionSize": size, "holdHours": hours}
    if rate is not None:
        args["fundingRate"] = rate
    r = await paper.call("binance_calculate_funding_cost", args)
    prem = paper.public("/fapi/v1/premiumIndex", symbol=BTC)
    mark, nxt, now = D(prem["markPrice"]), prem["nextFundingTime"], prem["time"]
    used = D(rate) if rate is not None else D(prem["lastFundingRate"])
    assert used > 0 and mark == Decimal("97500")
    end = now + int(D(hours) * 3_600_000)
    events = len(range(nxt, end + 1, 8 * 3_600_000))  # funding times in (now, now + hold]
    per = D(size) * mark * used
    assert set(r) == {"fundingRate", "fundingEvents", "totalCost"}
    assert D(r["fundingRate"]) == used and r["fundingEvents"] == events and D(r["totalCost"]) == per * events
    assert events >= 1 and nxt > now  # every hold here is over 8 h: at least one funding time, whatever the hour
    assert (D(r["totalCost"]) > 0) is (D(size) > 0)  # positive rate: longs pay (+), shorts receive (-)


async def test_funding_cost_failures(paper: Paper):
    tool = "binance_calculate_funding_cost"
    await paper.invalid(tool, {"symbol": BTC, "positionSize": "0", "holdHours": "8"}, "positionSize must not be 0")
    await paper.invalid(tool, {"symbol": BTC, "positionSize": "1", "holdHours": "0"}, "holdHours")
    await paper.invalid(tool, {"symbol": BTC, "positionSize": "1", "holdHours": "8", "fundingRate": "2"},
                        "fundingRate")
    await paper.unknown_symbol(tool, {"symbol": "XRPUSDT", "positionSize": "1", "holdHours": "8"})


# -- 34 binance_check_order_precision -------------------------------------------------------------
@pytest.mark.parametrize("market,symbol,price,qty", [
    ("spot", BTC, "96000.12", "0.0015"),  # passes
    ("spot", BTC, "96000.123", "0.000015"),  # tick, step and notional all fail
    ("spot", BTC, "600000", "0.001"),  # outside the price band (5x)
    ("futures", BTC, "96000.1", "0.002"),  # passes
    ("futures", BTC, "96000.15", "0.0005"),  # tick, step, min qty, notional fail
    ("futures", ETH, "3900", "1"),  # above the mark band (+5 %)
])
async def test_check_order_precision(paper: Paper, market, symbol, price, qty):
    r = await paper.call("binance_check_order_precision", {"symbol": symbol, "price": price, "quantity": qty,
                                                           "market": market})
    f = filters(paper, market, symbol)
    p, q = D(price), D(qty)
    tick, min_price = D(f["PRICE_FILTER"]["tickSize"]), D(f["PRICE_FILTER"]["minPrice"])
    step, min_qty, max_qty = (D(f["LOT_SIZE"][k]) for k in ("stepSize", "minQty", "maxQty"))
    if market == "futures":
        ref = D(paper.public("/fapi/v1/premiumIndex", symbol=symbol)["markPrice"])
        min_notional = D(f["MIN_NOTIONAL"]["notional"])
        up, down = D(f["PERCENT_PRICE"]["multiplierUp"]), D(f["PERCENT_PRICE"]["multiplierDown"])
    else:
        ref = D(paper.public("/api/v3/ticker/price", symbol=symbol)["price"])
        min_notional = D(f["NOTIONAL"]["minNotional"])
        up, down = D(f["PERCENT_PRICE_BY_SIDE"]["bidMultiplierUp"]), D(f["PERCENT_PRICE_BY_SIDE"]["askMultiplierDown"])
    expected = {
        "tick_size": (p - min_price) % tick == 0, "min_price": p >= min_price,
        "step_size": (q - min_qty) % step == 0, "min_qty": q >= min_qty, "max_qty": q <= max_qty,
        "min_notional": p * q >= min_notional, "percent_price": ref * down <= p <= ref * up,
    }
    got = {c["check"]: c["passed"] for c in r["checks"]}
    assert {k: got[k] for k in expected} == expected
    assert r["passes"] is all(got.values()) and all(c["detail"] for c in r["checks"])
    assert D(r["referencePrice"]) == ref
    assert D(r["validPrice"]) == nearest(p, tick) and D(r["validQuantity"]) == nearest(q, step)


async def test_check_order_precision_failures(paper: Paper):
    tool = "binance_check_order_precision"
    await paper.invalid(tool, {"symbol": BTC, "price": "-1", "quantity": "1"}, "price")
    await paper.invalid(tool, {"symbol": BTC, "price": "1", "quantity": "1", "market": "coin"}, "market")
    text = await paper.error(tool, {"symbol": "XRPUSDT", "price": "2", "quantity": "10", "market": "futures"})
    assert text.startswith("UNKNOWN_SYMBOL"), text


# -- 35 binance_get_optimal_trade_size -----------------------------------------------------------
def cost_of(levels: list[tuple[Decimal, Decimal]], qty: Decimal) -> Decimal:
    cost, left = Decimal(0), qty
    for price, avail in levels:
        take = min(avail, left)
        cost, left = cost + take * price, left - take
    assert left == 0, "more than the book holds"
    return cost


@pytest.mark.parametrize("side,impact", [("BUY", "0.01"), ("SELL", "0.05"), ("BUY", "1.0"), ("SELL", "10")])
async def test_optimal_trade_size(paper: Paper, side, impact):
    paper.set_price(BTC, "96543.21")
    r = await paper.call("binance_get_optimal_trade_size", {"symbol": BTC, "side": side, "maxPriceImpact": impact})
    book = paper.public("/api/v3/depth", symbol=BTC, limit=1000)
    levels = [(D(p), D(q)) for p, q in (book["asks"] if side == "BUY" else book["bids"])]
    step = D(filters(paper, "spot", BTC)["LOT_SIZE"]["stepSize"])
    best = levels[0][0]
    limit = best * (1 + D(impact) / 100) if side == "BUY" else best * (1 - D(impact) / 100)
    qty = D(r["quantity"])
    total = sum(q for _, q in levels)

    def within(q: Decimal) -> bool:
        avg = cost_of(levels, q) / q
        return avg <= limit if side == "BUY" else avg >= limit

    assert qty > 0 and qty % step == 0 and within(qty)
    if r["bookExhausted"]:
        assert qty == floor_to(total, step) and within(total)
    else:
        assert not within(qty + step)  # the largest quantity on the step grid
    assert D(r["bestPrice"]) == best
    assert D(r["avgPrice"]) == cost_of(levels, qty) / qty
    assert D(r["impactPct"]) == (abs(D(r["avgPrice"]) - best) / best * 100).quantize(Decimal("0.0001"))
    assert D(r["impactPct"]) <= D(impact)
    assert r["bookExhausted"] is (side == "SELL" and impact == "10")  # 1000 levels span about 2 %
    assert set(r) == {"bestPrice", "quantity", "avgPrice", "impactPct", "bookExhausted"}


async def test_optimal_trade_size_failures(paper: Paper):
    tool = "binance_get_optimal_trade_size"
    await paper.invalid(tool, {"symbol": BTC, "side": "BUY", "maxPriceImpact": "20"}, "maxPriceImpact")
    await paper.invalid(tool, {"symbol": BTC, "side": "BUY", "maxPriceImpact": "0.001"}, "maxPriceImpact")
    await paper.invalid(tool, {"symbol": BTC, "side": "LONG"}, "side")
    await paper.unknown_symbol(tool, {"symbol": "NOPEUSDT", "side": "BUY"})
