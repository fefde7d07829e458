"""The endpoints added for real clients, checked against the official spec files like the others: spot replies
against the spot OpenAPI file's 200 schemas (test_openapi_shapes.py's validator), futures requests against the
futures Postman collection's parameter names (test_postman_params.py's loader)."""

from __future__ import annotations

import copy
import json

from binance_mcp.simulator.market_extra import MINI_FIELDS
from tests.simulator.test_openapi_shapes import Validator, check, schema_of, spec  # noqa: F401 - fixtures
from tests.simulator.test_postman_params import ALWAYS_ALLOWED, load_collection

SYMBOL = "BTCUSDT"
BTC = {"symbol": SYMBOL}

NEW_FUTURES = {
    ("GET", "/fapi/v1/aggTrades"), ("GET", "/fapi/v1/trades"), ("GET", "/fapi/v1/ticker/bookTicker"),
    ("GET", "/fapi/v1/fundingRate"), ("GET", "/fapi/v1/fundingInfo"), ("GET", "/fapi/v1/openInterest"),
    ("GET", "/fapi/v1/income"), ("GET", "/fapi/v1/commissionRate"), ("POST", "/fapi/v1/positionMargin"),
    ("PUT", "/fapi/v1/order"), ("POST", "/fapi/v1/batchOrders"), ("DELETE", "/fapi/v1/batchOrders"),
    ("GET", "/fapi/v1/indexPriceKlines"), ("GET", "/fapi/v1/premiumIndexKlines"),
}


def test_spot_market_replies_match_the_openapi_file(schema_of, client, sim):  # noqa: F811
    sim.control("price", {"symbol": SYMBOL, "price": "95000"})
    check(schema_of, client.get_recent_trades(**BTC, limit=5), "/api/v3/trades")
    # The file types aggTrade's "T" (its timestamp, example 1498793709153) as boolean: an erratum; Binance sends
    # an integer, so the check uses the file's schema with that one field corrected.
    agg = copy.deepcopy(schema_of("/api/v3/aggTrades", "get"))
    assert agg["items"]["properties"]["T"]["type"] == "boolean"
    agg["items"]["properties"]["T"] = {"type": "integer"}
    rows = client.get_aggregate_trades(**BTC, limit=5)
    assert not list(Validator(agg).iter_errors(rows)) and len(rows) == 5
    check(schema_of, client.get_orderbook_ticker(**BTC), "/api/v3/ticker/bookTicker")
    check(schema_of, client.get_orderbook_tickers(), "/api/v3/ticker/bookTicker")
    check(schema_of, client.get_avg_price(**BTC), "/api/v3/avgPrice")
    check(schema_of, client._get("ticker", data={**BTC, "windowSize": "4h"}), "/api/v3/ticker")
    for row in client._get("ticker", data={"symbols": json.dumps([SYMBOL, "ETHBTC"])}):  # the file has one object
        check(schema_of, row, "/api/v3/ticker")
    # The file (2024) describes only the FULL shape; a MINI row must match it on the fields MINI keeps.
    full = schema_of("/api/v3/ticker", "get")
    mini = {**full, "required": [k for k in full["required"] if k in MINI_FIELDS]}
    assert set(full["required"]) - set(mini["required"]) == {"priceChange", "priceChangePercent", "weightedAvgPrice"}
    rows = [client._get("ticker", data={**BTC, "type": "MINI"}), client.get_ticker(**BTC, type="MINI"),
            *client.get_ticker(type="MINI")]
    assert all(tuple(r) == MINI_FIELDS and not list(Validator(mini).iter_errors(r)) for r in rows)


def test_spot_account_replies_match_the_openapi_file(schema_of, client, sim):  # noqa: F811
    check(schema_of, client._get("account/commission", True, data=dict(BTC)), "/api/v3/account/commission")
    old = client.create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000")
    reply = client._post("order/cancelReplace", True, data={
        **BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "91000",
        "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": old["orderId"]})
    check(schema_of, reply, "/api/v3/order/cancelReplace", "post")


def exercise_futures(client, sim) -> None:
    """Every new futures endpoint through python-binance, the way its methods send them."""
    sim.control("price", {"symbol": SYMBOL, "market": "futures", "price": "95000", "mark": "95000"})
    trades = client.futures_recent_trades(**BTC, limit=5)
    client.futures_aggregate_trades(**BTC, fromId=trades[0]["id"], limit=5)
    client.futures_aggregate_trades(**BTC, startTime=trades[0]["time"], endTime=trades[-1]["time"])
    client.futures_orderbook_ticker(**BTC)
    client.futures_funding_rate(**BTC, limit=3)
    client._request_futures_api("get", "fundingInfo", False, data={})
    client.futures_open_interest(**BTC)
    client.futures_commission_rate(**BTC)
    client.futures_index_price_klines(pair=SYMBOL, interval="1h", limit=3)
    client._request_futures_api("get", "premiumIndexKlines", False, data={**BTC, "interval": "1h", "limit": 3})
    client.futures_change_margin_type(**BTC, marginType="ISOLATED")
    client.futures_create_order(**BTC, side="BUY", type="MARKET", quantity="0.010")
    client.futures_change_position_margin(**BTC, amount="10", type=1)
    order = client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010",
                                        price="90000")
    client.futures_modify_order(**BTC, orderId=order["orderId"], side="BUY", quantity="0.020", price="91000")
    placed = client.futures_place_batch_order(batchOrders=[
        dict(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="89000")])
    client.futures_cancel_orders(**BTC, orderidlist=[placed[0]["orderId"]])
    client.futures_income_history(**BTC, incomeType="COMMISSION", limit=10)


def test_every_new_futures_request_uses_the_collections_parameter_names(client, sim):
    collection = load_collection()
    assert NEW_FUTURES <= set(collection), sorted(NEW_FUTURES - set(collection))
    since = sim.control("state")["last_seq"]
    exercise_futures(client, sim)
    log = [e for e in sim.control(f"requests?since={since}") if e["path"].startswith("/fapi/")]
    assert all(e["status"] == 200 for e in log), [(e["path"], e["code"]) for e in log if e["status"] != 200]
    seen = {(e["method"], e["path"]) for e in log}
    assert NEW_FUTURES <= seen, f"not exercised: {sorted(NEW_FUTURES - seen)}"
    problems = []
    for e in log:
        # Binance reads the batch-cancel lists in lower case too (ccxt and python-binance send them so)
        names = {k.lower() for k in collection[(e["method"], e["path"])] | ALWAYS_ALLOWED}
        extra = {k for k in e["params"] if k.lower() not in names}
        if extra:
            problems.append(f"{e['method']} {e['path']} sent {sorted(extra)}")
    assert problems == []


NEW_SPOT = [("GET", "/api/v3/trades"), ("GET", "/api/v3/aggTrades"), ("GET", "/api/v3/ticker/bookTicker"),
            ("GET", "/api/v3/avgPrice"), ("GET", "/api/v3/ticker"), ("POST", "/api/v3/order/cancelReplace"),
            ("GET", "/api/v3/account/commission"), ("POST", "/api/v3/orderList/oco"), ("POST", "/api/v3/orderList/oto")]
# Parameters Binance added after the 2024 spot file: accepted (and ignored) as Binance accepts them today.
NEWER_SPOT_PARAMS = {"symbolStatus", "orderRateLimitExceededMode"}


def _spot_params(spec: dict, method: str, path: str) -> set[str]:  # noqa: F811
    names = set()
    for prm in spec["paths"][path][method.lower()].get("parameters", []):
        if "$ref" in prm:
            prm = spec["components"]["parameters"][prm["$ref"].split("/")[-1]]
        names.add(prm["name"])
    return names


def test_new_spot_routes_declare_the_files_parameters_and_weights(spec):  # noqa: F811
    import re

    from binance_mcp.simulator.app import ROUTES
    from binance_mcp.simulator.params import Params

    for method, path in NEW_SPOT:
        route = ROUTES[(method, path)]
        documented = _spot_params(spec, method, path)
        assert route.params <= documented | NEWER_SPOT_PARAMS, (path, sorted(route.params - documented))
        assert documented - {"timestamp", "signature", "recvWindow"} - route.params == set(), path
        text = spec["paths"][path][method.lower()]["description"]
        simple = re.search(r"Weight(?:\(IP\))?: (\d+)\s*$", text[text.find("Weight"):], re.M)
        one = Params({"symbol": "BTCUSDT"})
        if path == "/api/v3/ticker/bookTicker":
            assert (route.cost(one), route.cost(Params({}))) == (2, 4)  # "`2` for a single symbol; `4` ..."
        elif path == "/api/v3/ticker":
            assert (route.cost(one), route.cost(Params({"symbols": '["BTCUSDT","ETHBTC"]'}))) == (4, 8)
            assert "4 for each requested symbol" in text
        else:
            assert simple is not None and route.cost(one) == int(simple.group(1)), path
    # amend (not in the 2024 file): refused, with today's documented parameters
    assert ROUTES[("PUT", "/api/v3/order/amend/keepPriority")].params == {
        "symbol", "orderId", "origClientOrderId", "newClientOrderId", "newQty"}


def test_new_futures_routes_declare_the_collections_parameters():
    from binance_mcp.simulator.app import ROUTES

    collection = load_collection()
    for key in NEW_FUTURES:
        documented = collection[key] - ALWAYS_ALLOWED
        declared = {k for k in ROUTES[key].params if k not in ("orderidlist", "origclientorderidlist")}
        assert declared == documented, (key, sorted(declared ^ documented))
