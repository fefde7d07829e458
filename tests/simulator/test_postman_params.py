"""What python-binance sends for the futures methods our tools use must match Binance's official Postman
collection: the method and path exist there, and every parameter name is one the collection lists for it.

The requests are captured from the simulator's request log (method, path, params without the signature).
The collection is reference data in shared/spec; if it is missing this test fails rather than skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
# The repository's copy (tests/data/spec), else the workplace's shared/spec beside the repository.
SPEC_DIR = next((d for d in (_REPO / "tests" / "data" / "spec", _REPO.parent / "shared" / "spec")
                 if (d / "binance_usds_futures.postman_collection.json").exists()), _REPO / "tests" / "data" / "spec")
COLLECTION = SPEC_DIR / "binance_usds_futures.postman_collection.json"
ALWAYS_ALLOWED = {"recvWindow", "timestamp", "signature"}
BTC = {"symbol": "BTCUSDT"}

# Every (method, path) the calls below must produce: the test fails if one of them was not exercised.
EXPECTED = {
    ("GET", "/fapi/v2/account"), ("GET", "/fapi/v3/balance"), ("GET", "/fapi/v3/positionRisk"),
    ("GET", "/fapi/v2/positionRisk"), ("GET", "/fapi/v1/symbolConfig"),
    ("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder"), ("DELETE", "/fapi/v1/order"),
    ("DELETE", "/fapi/v1/algoOrder"), ("DELETE", "/fapi/v1/allOpenOrders"), ("DELETE", "/fapi/v1/algoOpenOrders"),
    ("GET", "/fapi/v1/openOrders"), ("GET", "/fapi/v1/openAlgoOrders"), ("GET", "/fapi/v1/order"),
    ("GET", "/fapi/v1/algoOrder"), ("GET", "/fapi/v1/allOrders"), ("GET", "/fapi/v1/userTrades"),
    ("POST", "/fapi/v1/leverage"), ("POST", "/fapi/v1/marginType"), ("GET", "/fapi/v1/positionSide/dual"),
    ("POST", "/fapi/v1/positionSide/dual"), ("GET", "/fapi/v1/leverageBracket"), ("GET", "/fapi/v1/exchangeInfo"),
    ("GET", "/fapi/v2/ticker/price"), ("GET", "/fapi/v1/premiumIndex"), ("GET", "/fapi/v1/ticker/24hr"),
    ("GET", "/fapi/v1/depth"), ("GET", "/fapi/v1/klines"), ("GET", "/fapi/v1/markPriceKlines"),
}


def load_collection() -> dict[tuple[str, str], set[str]]:
    """{(METHOD, /path): {param names}} from the Postman v2.1 collection's nested items."""
    assert COLLECTION.is_file(), f"the official futures Postman collection is missing: {COLLECTION}"
    data = json.loads(COLLECTION.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], set[str]] = {}

    def walk(items: list[dict]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            req = item["request"]
            url = req["url"]
            path = url["path"] if isinstance(url["path"], str) else "/".join(url["path"])
            names = {q["key"] for q in url.get("query", [])}
            body = req.get("body") or {}
            names |= {f["key"] for f in body.get(body.get("mode") or "", []) if isinstance(f, dict) and "key" in f}
            out.setdefault((req["method"].upper(), "/" + path.lstrip("/")), set()).update(names)

    walk(data["item"])
    return out


def test_the_collection_is_readable_and_covers_the_algo_endpoints():
    spec = load_collection()
    assert len(spec) > 80
    assert {"algoType", "triggerPrice", "clientAlgoId", "closePosition"} <= spec[("POST", "/fapi/v1/algoOrder")]
    assert "stopPrice" not in spec[("POST", "/fapi/v1/order")], "conditional params moved to algoOrder"


def exercise(client, sim) -> None:
    """Call every python-binance futures method the MCP tools use, the way they use it."""
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
    client.futures_exchange_info()
    client.futures_symbol_ticker(**BTC)
    client.futures_mark_price(**BTC)
    client.futures_ticker(**BTC)
    client.futures_order_book(**BTC, limit=5)
    client.futures_klines(**BTC, interval="1h", limit=3)
    client.futures_mark_price_klines(**BTC, interval="1h", limit=3)
    client.futures_account()
    client.futures_account_balance()
    client.futures_position_information(**BTC)
    client._request_futures_api("get", "positionRisk", True, version=2, data=dict(BTC))
    client._request_futures_api("get", "symbolConfig", True, version=1, data=dict(BTC))
    client.futures_leverage_bracket(**BTC)
    client.futures_change_leverage(**BTC, leverage=10)
    client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")
    client.futures_get_position_mode()
    client.futures_change_position_mode(dualSidePosition="true")
    client.futures_change_position_mode(dualSidePosition="false")
    market = client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.01", newOrderRespType="RESULT")
    client.futures_create_order(**BTC, side="SELL", type="MARKET", quantity="0.01", reduceOnly="true")
    limit = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                        price="90000", newClientOrderId="postman-limit")
    client.futures_get_order(**BTC, orderId=limit["orderId"])
    client.futures_get_order(**BTC, origClientOrderId="postman-limit")
    client.futures_get_open_orders(**BTC)
    client.futures_cancel_order(**BTC, orderId=limit["orderId"])
    client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000")
    client.futures_cancel_all_open_orders(**BTC)
    stop = client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01",
                                       workingType="MARK_PRICE")
    client.futures_create_order(**BTC, side="SELL", type="TAKE_PROFIT", stopPrice="97000", price="97000",
                                quantity="0.01", timeInForce="GTC")
    client.futures_create_order(**BTC, side="SELL", type="STOP_MARKET", stopPrice="90000", closePosition="true")
    client.futures_get_open_orders(**BTC, conditional=True)
    client.futures_get_order(algoId=stop["algoId"])
    # The collection lists only algoId / clientAlgoId for DELETE /fapi/v1/algoOrder: no symbol.
    client.futures_cancel_order(algoId=stop["algoId"])
    client.futures_cancel_all_open_orders(**BTC, conditional=True)
    now = client.futures_time()["serverTime"]
    client.futures_get_all_orders(**BTC, startTime=now - 86_400_000, endTime=now)
    client.futures_account_trades(**BTC, orderId=market["orderId"])
    client.futures_account_trades(**BTC, limit=10)


def test_every_futures_request_uses_documented_parameter_names(client, sim):
    spec = load_collection()
    since = sim.control("state")["last_seq"]
    exercise(client, sim)
    log = [e for e in sim.control(f"requests?since={since}") if e["path"].startswith("/fapi/")]
    assert all(e["status"] == 200 for e in log), [(e["path"], e["code"]) for e in log if e["status"] != 200]
    seen = {(e["method"], e["path"]) for e in log}
    assert EXPECTED <= seen, f"not exercised: {sorted(EXPECTED - seen)}"
    problems = []
    for e in log:
        key = (e["method"], e["path"])
        if key not in spec:
            problems.append(f"{key} is not in the collection")
            continue
        extra = set(e["params"]) - spec[key] - ALWAYS_ALLOWED
        if extra:
            problems.append(f"{key} sent {sorted(extra)}; the collection has {sorted(spec[key])}")
    assert problems == []


@pytest.mark.parametrize("call, path", [
    (lambda c: c.futures_cancel_order(symbol="BTCUSDT", algoId=1), "/fapi/v1/algoOrder"),
])
def test_known_mismatches_are_detected(client, sim, call, path):
    """Sanity check of the comparison itself: a symbol on DELETE algoOrder is not in the collection."""
    spec = load_collection()
    since = sim.control("state")["last_seq"]
    try:
        call(client)
    except Exception:  # noqa: BLE001 - the outcome does not matter, only what was sent
        pass
    (entry,) = [e for e in sim.control(f"requests?since={since}") if e["path"] == path]
    assert set(entry["params"]) - spec[("DELETE", path)] - ALWAYS_ALLOWED == {"symbol"}
