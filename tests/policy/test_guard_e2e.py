"""The guard end to end: ``binance-mcp serve`` as a subprocess over stdio, its paper simulator observed directly.

One server serves the module; each test writes the policy it needs into the server's policy file (the guard
reloads it on the next call, which test_guard_runtime_e2e checks on its own).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import pytest_asyncio

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy.loader import shipped_path
from binance_mcp.tools import all_tools
from tests.policy.test_guard_helpers import D, Paper, http_json, limit_buy, serve, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
LIMITS = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits:
      symbols: [BTCUSDT]
      max_notional_usd: 500
      daily_notional_usd: 100000
  binance_futures_place_order:
    limits:
      symbols: [btcusdt]
      max_notional_usd: 500
  binance_futures_set_margin_type:
    action: deny
    reason: "Margin mode is changed by hand."
"""

# Valid arguments for every tool that needs some (the others take none): a denied call must be denied by the
# policy, not refused as invalid input.
S = {"symbol": "BTCUSDT"}
SAMPLE_ARGS = {
    "binance_spot_place_order": {**S, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"},
    "binance_spot_cancel_order": {**S, "orderId": 1},
    "binance_spot_cancel_all_orders": S,
    "binance_spot_order_history": S,
    "binance_spot_trade_history": S,
    "binance_futures_place_order": {**S, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"},
    "binance_futures_cancel_order": {**S, "orderId": 1},
    "binance_futures_cancel_all_orders": S,
    "binance_futures_order_history": S,
    "binance_futures_trade_history": S,
    "binance_futures_change_leverage": {**S, "leverage": 3},
    "binance_futures_set_margin_type": {**S, "marginType": "ISOLATED"},
    "binance_futures_close_position": S,
    "binance_spot_orderbook": S,
    "binance_spot_klines": {**S, "interval": "1h"},
    "binance_futures_klines": {**S, "interval": "1h"},
    "binance_calculate_position_size": {**S, "riskAmount": "10", "entryPrice": "97000", "stopLossPrice": "95000"},
    "binance_compare_spot_futures_price": S,
    "binance_calculate_funding_cost": {**S, "positionSize": "0.1", "holdHours": 8},
    "binance_check_order_precision": {**S, "price": "97000", "quantity": "0.001"},
    "binance_get_optimal_trade_size": {**S, "side": "BUY"},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("guard-e2e")
    async with serve(d / "state", write_policy(d / "policy.yaml", LIMITS)) as p:
        yield p


@pytest.fixture
def paper(server: Paper) -> Paper:
    server.reset()
    write_policy(server.policy, LIMITS)
    return server


def best(paper: Paper, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    """(best bid, best ask), read from the simulator's own public order book."""
    book = http_json(f"{paper.base}/api/v3/depth?symbol={symbol}&limit=5")
    return D(book["bids"][0][0]), D(book["asks"][0][0])


async def test_a_denied_call_never_reaches_the_exchange_and_is_audited(paper: Paper):
    before = paper.state()
    text = await paper.denied(ORDER, limit_buy(qty="0.01", price="90000"), "NOTIONAL_OVER_LIMIT")
    # The agent reads the code, the numbers, the rule and what to change.
    # A resting BUY counts at the higher of its price and the ask (97000.01): 970.00 USD, not 900.
    assert "970.00 USD is over the 500 USD limit of rule tools.binance_spot_place_order.limits.max_notional_usd" \
        in text, text
    assert "Reduce quantity to at most 0.00515463" in text, text
    priced = paper.state()  # pricing it took the book and the last price; the next two need no facts
    assert priced["last_seq"] - before["last_seq"] == 2
    text = await paper.denied(ORDER, limit_buy(symbol="ETHUSDT", price="3000"), "SYMBOL_NOT_ALLOWED")
    assert "ETHUSDT is not in tools.binance_spot_place_order.limits.symbols" in text
    text = await paper.denied("binance_futures_set_margin_type", {**S, "marginType": "ISOLATED"}, "TOOL_DENIED")
    assert text == "TOOL_DENIED: Margin mode is changed by hand."
    after = paper.state()
    # Nothing at all was sent: these decisions need no exchange facts.
    assert after["last_seq"] == priced["last_seq"], paper.requests(priced["last_seq"])

    records = paper.calls()[-3:]
    assert [r["tool"] for r in records] == [ORDER, ORDER, "binance_futures_set_margin_type"]
    over, symbol, margin = records
    assert over["decision"]["code"] == "NOTIONAL_OVER_LIMIT"
    assert over["decision"]["effect"] == "deny"
    assert over["decision"]["rule"] == "tools.binance_spot_place_order.limits.max_notional_usd"
    assert D(over["decision"]["facts"]["notional_usd"]) == Decimal("970.0001")
    assert over["outcome"] == {"status": "not_run"}
    assert over["args"] == limit_buy(qty="0.01", price="90000")
    assert over["policy"]["source"] == str(paper.policy) and over["policy"]["mode"] == "enforce"
    assert symbol["decision"]["rule"] == "tools.binance_spot_place_order.limits.symbols"
    assert symbol["outcome"] == {"status": "not_run"}
    assert margin["decision"]["code"] == "TOOL_DENIED" and margin["decision"]["rule"] == \
        "tools.binance_futures_set_margin_type"
    assert margin["outcome"] == {"status": "not_run"}
    assert len({r["call_id"] for r in records}) == 3

    # The same order within the limit runs, and the audit says which order it became.
    seq = paper.state()["last_seq"]
    placed = await paper.ok(ORDER, limit_buy(qty="0.005", price="90000"))
    (sent,) = paper.spot_orders_since(seq)
    assert sent["params"]["quantity"] == "0.005"
    ok = paper.calls(ORDER)[-1]
    assert ok["decision"]["code"] == "ALLOWED" and ok["outcome"]["status"] == "ok"
    assert ok["outcome"]["order_id"] == placed["orderId"]


async def test_policylayer_published_policy(paper: Paper):
    """PolicyLayer's Binance policy, unchanged: default deny, balances allowed; everything else is denied
    and hidden, except binance_policy_status, which an agent may always call."""
    text = shipped_path("policylayer-binance.json").read_text(encoding="utf-8")
    assert text.strip() == '{"version": "1", "default": "deny", "tools": {"binance_spot_balances": {}}}'
    write_policy(paper.policy, text)
    assert await paper.tool_names() == {"binance_spot_balances", "binance_policy_status"}
    balances = await paper.ok("binance_spot_balances")
    assert any(b["asset"] == "USDT" for b in balances["balances"]), balances
    status = await paper.status()
    assert [t["tool"] for t in status["tools"]] == ["binance_spot_balances", "binance_policy_status"]
    assert status["denied"] == len(ALL_TOOLS) - 2

    defs = {t.name: t for t in all_tools()}
    others = [s.name for s in ALL_TOOLS if s.name not in ("binance_spot_balances", "binance_policy_status")]
    assert len(others) == 34
    before = paper.state()
    for name in others:
        args = SAMPLE_ARGS.get(name, {})
        defs[name].args.model_validate(args)  # valid input: only the policy can refuse it
        r = await paper.call(name, args)
        assert r.is_error and r.content[0].text.startswith("TOOL_DENIED: "), (name, r.content[0].text)
        assert "default" in r.content[0].text, r.content[0].text
    assert paper.state()["last_seq"] == before["last_seq"], paper.requests(before["last_seq"])
    denied = paper.calls()[-len(others):]
    assert [r["tool"] for r in denied] == others
    assert {(r["decision"]["code"], r["decision"]["rule"], r["outcome"]["status"]) for r in denied} == \
        {("TOOL_DENIED", "default", "not_run")}


async def test_market_orders_ignore_a_made_up_price(paper: Paper):
    bid, ask = best(paper)
    # A MARKET order takes no price: a made-up one is refused before the policy or the exchange sees it.
    before = paper.state()
    for tool in (ORDER, "binance_futures_place_order"):
        r = await paper.call(tool, {**S, "side": "BUY", "type": "MARKET", "quantity": "0.01", "price": "1"})
        assert r.is_error and r.content[0].text.startswith("INVALID_INPUT: "), r.content[0].text
    assert paper.state()["order_requests"] == before["order_requests"]
    # Without it the server prices the order itself: quantity x the best ask for a BUY, the best bid for a SELL.
    await paper.denied(ORDER, {**S, "side": "BUY", "type": "MARKET", "quantity": "0.01"}, "NOTIONAL_OVER_LIMIT")
    assert D(paper.calls(ORDER)[-1]["decision"]["facts"]["notional_usd"]) == Decimal("0.01") * ask
    paper.sim("balances", {"spot": {"BTC": "1"}})
    await paper.denied(ORDER, {**S, "side": "SELL", "type": "MARKET", "quantity": "0.006"}, "NOTIONAL_OVER_LIMIT")
    assert D(paper.calls(ORDER)[-1]["decision"]["facts"]["notional_usd"]) == Decimal("0.006") * bid
    # Futures: quantity x the higher of the ask and the mark price, whatever the agent thinks the price is.
    await paper.denied("binance_futures_place_order", {**S, "side": "BUY", "type": "MARKET", "quantity": "0.01"},
                       "NOTIONAL_OVER_LIMIT")
    mark = D(paper.state()["futures"]["BTCUSDT"]["mark"])
    fask = D(http_json(f"{paper.base}/fapi/v1/depth?symbol=BTCUSDT&limit=5")["asks"][0][0])
    assert D(paper.calls("binance_futures_place_order")[-1]["decision"]["facts"]["notional_usd"]) == \
        Decimal("0.01") * max(mark, fask)


async def test_a_crossing_limit_sell_at_a_made_up_low_price_is_priced_at_the_market(paper: Paper):
    # 0.02 BTC at a made-up 20000 (inside the exchange's price band) looks like 400 USD; it fills at the bid
    # (about 1940 USD), so the 500 USD per-order limit must refuse it.
    paper.sim("balances", {"spot": {"BTC": "1"}})
    seq = paper.state()["last_seq"]
    r = await paper.call(ORDER, {**S, "side": "SELL", "type": "LIMIT", "quantity": "0.02", "price": "20000"})
    filled = paper.spot_orders_since(seq)
    assert r.is_error and r.content[0].text.startswith("NOTIONAL_OVER_LIMIT: "), (r.content[0].text, filled)
    assert filled == []


async def test_lower_case_symbols_meet_symbol_rules(paper: Paper):
    # "btcusdt" is BTCUSDT for the allow-list (spot rule BTCUSDT, futures rule written as btcusdt) ...
    await paper.ok(ORDER, limit_buy(symbol="btcusdt"))
    assert paper.calls(ORDER)[-1]["args"]["symbol"] == "BTCUSDT"
    await paper.denied(ORDER, limit_buy(symbol="btcusdt", qty="0.01"), "NOTIONAL_OVER_LIMIT")
    await paper.denied(ORDER, limit_buy(symbol=" ethusdt ", price="3000"), "SYMBOL_NOT_ALLOWED")
    fut = await paper.ok("binance_futures_place_order", {"symbol": "btcusdt", "side": "BUY", "type": "LIMIT",
                                                         "quantity": "0.002", "price": "90000"})
    assert paper.calls("binance_futures_place_order")[-1]["args"]["symbol"] == "BTCUSDT"
    opened = (await paper.ok("binance_futures_open_orders", {"symbol": "BTCUSDT"}))["orders"]
    assert [(o["orderId"], o["symbol"]) for o in opened] == [(fut["orderId"], "BTCUSDT")]
    # ... and for deny rules, wherever the case is.
    write_policy(paper.policy, """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            limits: {deny_symbols: ["btc*"]}
          binance_futures_place_order:
            limits: {deny_symbols: [BTCUSDT]}
        """)
    text = await paper.denied(ORDER, limit_buy(symbol="btcusdt"), "SYMBOL_NOT_ALLOWED")
    assert "BTCUSDT matches 'BTC*' in tools.binance_spot_place_order.limits.deny_symbols" in text, text
    await paper.denied(ORDER, limit_buy(symbol="BtcUsdt"), "SYMBOL_NOT_ALLOWED")
    await paper.denied("binance_futures_place_order", {"symbol": "btcusdt", "side": "SELL", "type": "MARKET",
                                                       "quantity": "0.001"}, "SYMBOL_NOT_ALLOWED")
    await paper.ok(ORDER, limit_buy(symbol="ethusdt", qty="0.01", price="3000"))


async def test_quote_order_qty_is_the_notional(paper: Paper):
    used = await paper.daily_used()
    text = await paper.denied(ORDER, {**S, "side": "BUY", "type": "MARKET", "quoteOrderQty": "600"},
                              "NOTIONAL_OVER_LIMIT")
    assert "600.00 USD is over the 500 USD limit" in text, text
    seq = paper.state()["last_seq"]
    o = await paper.ok(ORDER, {"symbol": "btcusdt", "side": "BUY", "type": "MARKET", "quoteOrderQty": "120"})
    assert D(o["cummulativeQuoteQty"]) <= 120 and len(paper.spot_orders_since(seq)) == 1
    assert D(paper.calls(ORDER)[-1]["decision"]["facts"]["notional_usd"]) == Decimal("120")
    assert await paper.daily_used() == used + 120
    # The daily cap counts quote amounts too.
    write_policy(paper.policy, LIMITS.replace("daily_notional_usd: 100000", f"daily_notional_usd: {used + 200}"))
    text = await paper.denied(ORDER, {**S, "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"},
                              "DAILY_NOTIONAL_OVER_LIMIT")
    assert "80.00 USD remain today" in text, text
