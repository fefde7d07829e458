"""Every spot response the simulator gives, validated against the official Binance spot OpenAPI file
(shared/spec/binance_spot_api.openapi.yaml): the 200 response schema of the same path and method.

The file is from 2024 and predates some fields, so additional properties are allowed (as the file itself
allows them), but every field it marks required must be there with its type. OpenAPI 3.0 is turned into
JSON Schema here: $refs inlined, ``nullable`` -> a "null" type, int32/int64 -> integer ranges."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

SPEC_NAME = "binance_spot_api.openapi.yaml"
_REPO = Path(__file__).resolve().parents[2]
SPEC = next((d / SPEC_NAME for d in (_REPO / "tests" / "data" / "spec", _REPO.parent / "shared" / "spec")
             if (d / SPEC_NAME).exists()), _REPO / "tests" / "data" / "spec" / SPEC_NAME)
SYMBOL = "BTCUSDT"
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

# JSON Schema's draft 7 counts 1.0 as an integer; Binance ids and times are JSON integers, so be strict.
Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)),
)


def to_json_schema(node, root: dict, stack: tuple[str, ...] = ()):
    """OpenAPI 3.0 schema -> JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [to_json_schema(v, root, stack) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/") and ref not in stack, f"unsupported or recursive $ref {ref}"
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        return to_json_schema(target, root, stack + (ref,))
    out = {k: to_json_schema(v, root, stack) for k, v in node.items() if k not in ("nullable", "format", "example")}
    fmt = node.get("format")
    if fmt in INT_RANGES:
        out["minimum"], out["maximum"] = INT_RANGES[fmt]
    if (node.get("nullable") is True or fmt == "nullable") and "type" in node:  # the file also spells it
        out["type"] = [node["type"], "null"]  # as a format
    return out


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC.is_file():
        pytest.fail(f"the official spot OpenAPI file is missing: {SPEC}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


@pytest.fixture(scope="module")
def schema_of(spec):
    cache: dict = {}

    def get(path: str, method: str, branch: str | None = None) -> dict:
        """The 200 response schema of ``method path``; ``branch`` picks one alternative of a oneOf whose
        alternatives overlap (ACK / RESULT / FULL: with additional properties a FULL reply matches all three,
        which a oneOf refuses, so the reply is checked against the alternative its newOrderRespType names)."""
        key = (path, method, branch)
        if key not in cache:
            raw = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
            if branch is not None:
                (raw,) = [alt for alt in raw["oneOf"] if alt["$ref"].endswith("/" + branch)]
            schema = to_json_schema(raw, spec)
            if path == "/api/v3/exchangeInfo":
                _filters_by_type(schema)
            Validator.check_schema(schema)
            cache[key] = schema
        return cache[key]

    return get


def _filters_by_type(schema: dict) -> None:
    """The file gives one item schema for every exchangeInfo filter, and it is PRICE_FILTER's (required
    minPrice/maxPrice/tickSize). Apply it to PRICE_FILTER items; other filters must have a string filterType."""
    items = schema["properties"]["symbols"]["items"]["properties"]["filters"]
    price_filter = items["items"]
    assert price_filter["required"] == ["filterType", "minPrice", "maxPrice", "tickSize"]
    items["items"] = {
        "type": "object", "required": ["filterType"], "properties": {"filterType": {"type": "string"}},
        "if": {"properties": {"filterType": {"const": "PRICE_FILTER"}}}, "then": price_filter,
    }


def check(schema_of, body, path: str, method: str = "get", branch: str | None = None) -> None:
    errors = sorted(Validator(schema_of(path, method, branch)).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture
def trading(sim, client):
    """An account with open, filled, cancelled and conditional orders on BTCUSDT."""
    sim.control("price", {"symbol": SYMBOL, "price": "95000"})
    sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    out = {
        "market": client.create_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.2"),
        "resting": client.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC",
                                       quantity="0.01", price="90000"),
        "stop": client.create_order(symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
                                    quantity="0.01", price="89000", stopPrice="90000"),
        "ioc": client.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01",
                                   price="94000"),
        "sell": client.create_order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.1"),
    }
    gone = client.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                               price="91000")
    out["cancel"] = client.cancel_order(symbol=SYMBOL, orderId=gone["orderId"])
    return out


def test_the_spec_file_is_there_and_is_the_spot_api():
    assert SPEC.is_file(), f"missing {SPEC}"


def test_spec_is_openapi_3_with_the_spot_paths(spec):
    assert spec["openapi"].startswith("3.0")
    for path in ("/api/v3/account", "/api/v3/order", "/api/v3/openOrders", "/api/v3/klines", "/api/v3/depth"):
        assert path in spec["paths"]


def test_the_validator_is_not_vacuous(schema_of, client, sim):
    """A reply that lost a required field, or carries one with the wrong type, must fail."""
    order = client.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                price="90000")
    check(schema_of, order, "/api/v3/order", "post", "orderResponseFull")
    for broken in ({k: v for k, v in order.items() if k != "orderId"}, {**order, "orderId": str(order["orderId"])},
                   {**order, "price": 90000.0}, {**order, "fills": None}, {**order, "transactTime": 1.5}):
        with pytest.raises(AssertionError):
            check(schema_of, broken, "/api/v3/order", "post", "orderResponseFull")
    ticker = client.get_symbol_ticker(symbol=SYMBOL)
    with pytest.raises(AssertionError):
        check(schema_of, {"symbol": SYMBOL}, "/api/v3/ticker/price")
    check(schema_of, ticker, "/api/v3/ticker/price")


def test_account(schema_of, client, trading):
    check(schema_of, client.get_account(), "/api/v3/account")
    check(schema_of, client.get_account(omitZeroBalances="true"), "/api/v3/account")


def test_new_order_replies_full_result_and_ack(schema_of, client, trading):
    check(schema_of, trading["market"], "/api/v3/order", "post", "orderResponseFull")
    check(schema_of, trading["resting"], "/api/v3/order", "post", "orderResponseFull")
    check(schema_of, trading["ioc"], "/api/v3/order", "post", "orderResponseFull")
    check(schema_of, trading["stop"], "/api/v3/order", "post", "orderResponseAck")
    assert trading["market"]["fills"] and "fills" not in trading["stop"]
    for otype, extra in (("LIMIT", dict(timeInForce="GTC", price="90500")), ("MARKET", {})):
        for resp_type, branch in (("RESULT", "orderResponseResult"), ("ACK", "orderResponseAck"),
                                  ("FULL", "orderResponseFull")):
            reply = client.create_order(symbol=SYMBOL, side="BUY", type=otype, quantity="0.001",
                                        newOrderRespType=resp_type, **extra)
            check(schema_of, reply, "/api/v3/order", "post", branch)
            assert ("fills" in reply) is (resp_type == "FULL") and ("status" in reply) is (resp_type != "ACK")
    stop_full = client.create_order(symbol=SYMBOL, side="SELL", type="STOP_LOSS", quantity="0.01",
                                    stopPrice="80000", newOrderRespType="FULL")
    check(schema_of, stop_full, "/api/v3/order", "post", "orderResponseFull")


def test_test_order(schema_of, client):
    check(schema_of, client.create_test_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.001"),
          "/api/v3/order/test", "post")


def test_cancel_and_cancel_all(schema_of, client, trading):
    check(schema_of, trading["cancel"], "/api/v3/order", "delete")
    reports = client.cancel_all_open_orders(symbol=SYMBOL)
    assert len(reports) == 2
    check(schema_of, reports, "/api/v3/openOrders", "delete")
    for report in reports:
        check(schema_of, report, "/api/v3/order", "delete")  # each one is a plain order, not an order list


def test_order_queries(schema_of, client, trading):
    open_orders = client.get_open_orders(symbol=SYMBOL)
    assert {o["type"] for o in open_orders} == {"LIMIT", "STOP_LOSS_LIMIT"}
    check(schema_of, open_orders, "/api/v3/openOrders")
    check(schema_of, client.get_open_orders(), "/api/v3/openOrders")
    every = client.get_all_orders(symbol=SYMBOL)
    assert {o["status"] for o in every} == {"FILLED", "NEW", "EXPIRED", "CANCELED"}
    check(schema_of, every, "/api/v3/allOrders")
    for order in every:
        check(schema_of, client.get_order(symbol=SYMBOL, orderId=order["orderId"]), "/api/v3/order")


def test_my_trades(schema_of, client, trading):
    trades = client.get_my_trades(symbol=SYMBOL)
    assert {t["isBuyer"] for t in trades} == {True, False}
    check(schema_of, trades, "/api/v3/myTrades")


def test_exchange_info(schema_of, client):
    check(schema_of, client.get_exchange_info(), "/api/v3/exchangeInfo")
    check(schema_of, client._get("exchangeInfo", data={"symbol": "ETHBTC"}), "/api/v3/exchangeInfo")


def test_price_tickers(schema_of, client):
    check(schema_of, client.get_symbol_ticker(symbol=SYMBOL), "/api/v3/ticker/price")
    check(schema_of, client.get_all_tickers(), "/api/v3/ticker/price")


def test_24hr_tickers(schema_of, client):
    check(schema_of, client.get_ticker(symbol=SYMBOL), "/api/v3/ticker/24hr")
    check(schema_of, client.get_ticker(), "/api/v3/ticker/24hr")


def test_depth(schema_of, client):
    for limit in (5, 100):
        check(schema_of, client.get_order_book(symbol=SYMBOL, limit=limit), "/api/v3/depth")


@pytest.mark.parametrize("interval", ["1m", "1h", "1d", "1M"])
def test_klines(schema_of, client, interval):
    klines = client.get_klines(symbol=SYMBOL, interval=interval, limit=3)
    assert len(klines) == 3
    check(schema_of, klines, "/api/v3/klines")


def test_time_and_ping(schema_of, client):
    check(schema_of, client.get_server_time(), "/api/v3/time")
    check(schema_of, client.ping(), "/api/v3/ping")


def test_schema_conversion_handles_nullable_and_int64(spec):
    converted = to_json_schema({"type": "integer", "format": "int64", "nullable": True}, spec)
    v = Validator(converted)
    assert v.is_valid(None) and v.is_valid(2**62) and not v.is_valid(2**63) and not v.is_valid("1")
    assert not v.is_valid(1.0)
    assert to_json_schema({"type": "number", "format": "nullable"}, spec)["type"] == ["number", "null"]
    original = copy.deepcopy(spec["components"]["schemas"]["account"])
    to_json_schema({"$ref": "#/components/schemas/account"}, spec)
    assert spec["components"]["schemas"]["account"] == original  # the shared spec is not modified
