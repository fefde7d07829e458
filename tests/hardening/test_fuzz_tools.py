"""Every tool's input, fuzzed: arbitrary JSON-ish arguments never crash the server or reach the exchange unchecked.

One in-process server (the real policy guard, an allow-all policy) talks to one simulator over HTTP. For each of
the 36 tools hypothesis builds argument objects from the tool's own input schema: its field names and unknown
ones, mapped to any JSON value (unicode text, huge and negative integers, NaN and infinities, booleans, null,
lists, objects) or to plausible values (real symbols, the schema's enum values, decimal strings) so that many calls
pass validation and really run. Properties of every result:

- it is a result, never a protocol error, and carries no Python traceback;
- a success has structured content; an error's text starts with a known code (INVALID_INPUT, a policy code,
  EXCHANGE_REJECTED, ...);
- INVALID_INPUT means the simulator saw no request at all during the call;
- arguments the published schema plainly forbids (an unknown name, true/false for a number, a list for a scalar,
  non-ASCII text for a number) are INVALID_INPUT: never coerced into something that is sent.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from binance_mcp.catalog import ALL_TOOLS
from tests.hardening.helpers import (
    COUNTS,
    CRASH_MARKERS,
    KNOWN_CODES,
    SyncServer,
    error_code,
    result_text,
    seq,
    server_env,
)
from tests.helpers import simulator, write_policy

EXAMPLES = 30  # per tool: 36 tools -> about 1100 calls
HIGH_LIMITS = dict(spot_weight_per_minute=10**7, futures_weight_per_minute=10**7, spot_orders_per_10s=10**6,
                   futures_orders_per_10s=10**6, futures_orders_per_minute=10**7)


@pytest.fixture(scope="module")
def sim():
    with simulator(**HIGH_LIMITS) as rs:
        yield rs


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    srv = SyncServer(server_env(sim, base / "state", write_policy(base / "policy.yaml")))
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def schemas(server) -> dict[str, dict]:
    tools = server.list_tools()
    assert len(tools) == len(ALL_TOOLS) == 36  # allow-all lists every tool
    return {t.name: t.input_schema for t in tools}


# -- strategies ---------------------------------------------------------------------------------------------
PLAUSIBLE = ["BTCUSDT", "ETHUSDT", "btcusdt", " ETHBTC ", "BTC", "ZZZZUSDT", "0.001", "0.01", "1", "90000", "97000",
             "1e-3", "-1", "0", "0.000000001", "1h", "5", "100", "NaN", "Infinity", "1E+2", "１", "ВТСUSDT",
             "BTCUSDT&side=SELL", "BTCUSDT\n", "x" * 40, "", " ", "bmcp-fuzz-1", "true", "1e999999999",
             "-1e999999999", "1e-999999999", "9" * 40, "٣", "1_000"]
SCALARS = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(codec="ascii"), max_size=12),
    st.sampled_from(PLAUSIBLE),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, 1, 5, 100, 1000, 2**63, -(2**63), 10**14]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 1e-9, 1e-3, 1e40, -0.0, 90000.5]),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)


# Values that tempt a lax parser: coerced, they would turn into something else that is sent.
HOSTILE = st.sampled_from([True, False, None, [], {}, [1], {"a": 1}, "", " ", "１", "٣", "1_000", "0x10", "1e999999999",
                           "-1e999999999", "1e-999999999", "9" * 40, "NaN", "-Infinity", -1, 0, 2**64, -(2**63), 0.1,
                           1e-9, 1e300, "BTCUSDT&side=SELL", "btcuſdt", "ＢＴＣＵＳＤＴ", "BTC USDT", "-0", "1e-3"])


def valid_value(name: str, prop: dict) -> st.SearchStrategy:
    """A value of the right kind for the field, so that a call mutated in one other field gets that far."""
    options = enums(prop)
    types = types_of(prop)
    if options:
        return st.sampled_from(options)
    if "symbol" in name.lower():
        return st.sampled_from(["BTCUSDT", "ETHUSDT"])
    if "integer" in types:
        return st.integers(min_value=1, max_value=20)
    if "number" in types:
        return st.sampled_from(["0.001", "0.002", "1", "90000"])
    if "boolean" in types:
        return st.booleans()
    return st.sampled_from(["BTCUSDT", "bmcp-fuzz-1"])


# Known-good calls of the tools whose arguments depend on each other (so a mutation of one field is the only fault).
GOOD_CALLS = {
    "binance_spot_place_order": [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"},
        {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "20"},
        {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "0.001", "price": "90000",
         "stopPrice": "91000", "timeInForce": "GTC"}],
    "binance_futures_place_order": [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"},
        {"symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.01", "price": "3600",
         "timeInForce": "GTC"},
        {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "stopPrice": "90000", "closePosition": True}],
    "binance_spot_cancel_order": [{"symbol": "BTCUSDT", "orderId": 1}],
    "binance_futures_cancel_order": [{"symbol": "BTCUSDT", "orderId": 1}],
    "binance_calculate_position_size": [{"symbol": "BTCUSDT", "riskAmount": "10", "entryPrice": "97000",
                                         "stopLossPrice": "96000"}],
}


def good_calls(tool: str, schema: dict) -> list[dict]:
    """Explicit examples every run tries: calls that pass validation (so the tool really runs at least once)."""
    if tool in GOOD_CALLS:
        return GOOD_CALLS[tool]
    props = schema.get("properties", {})
    first = {"integer": 5, "number": "1", "boolean": False}
    out = {}
    for name in schema.get("required", []):
        options, types = enums(props[name]), types_of(props[name])
        out[name] = options[0] if options else "BTCUSDT" if "symbol" in name.lower() else next(
            (v for t, v in first.items() if t in types), "BTCUSDT")
    return [out]


def args_strategy(tool: str, schema: dict) -> st.SearchStrategy[dict]:
    props: dict = schema.get("properties", {})
    names = sorted(props)
    unknown = st.text(min_size=1, max_size=12).filter(lambda k: k not in props)
    keys = st.sampled_from(names) | unknown if names else unknown
    anything = st.dictionaries(keys, VALUES, max_size=6)
    if not names:
        return anything
    field_value = {n: st.one_of(VALUES, valid_value(n, props[n])) for n in names}
    own = st.fixed_dictionaries({}, optional=field_value)
    required = schema.get("required", [])
    valid = st.fixed_dictionaries({n: valid_value(n, props[n]) for n in required},
                                  optional={n: valid_value(n, props[n]) for n in names if n not in required})
    if tool in GOOD_CALLS:
        valid = st.one_of(valid, st.sampled_from(GOOD_CALLS[tool]))
    # A valid-looking call with exactly one field (or an unknown one) replaced by a hostile or arbitrary value.
    mutated = st.builds(lambda base, key, value: {**base, key: value}, valid, keys, st.one_of(HOSTILE, VALUES))
    return st.one_of(anything, own, valid, mutated, mutated, mutated)


def types_of(prop: dict) -> set[str]:
    t = prop.get("type", [])
    out = set(t if isinstance(t, list) else [t])
    for option in prop.get("anyOf", []):
        out |= types_of(option)
    if "enum" in prop:
        out |= {type(v).__name__ for v in prop["enum"]}
    return out


def schema_forbids(schema: dict, args: dict) -> str | None:
    """Why the published schema plainly forbids ``args`` (so the only right answer is INVALID_INPUT), or None."""
    props = schema.get("properties", {})
    for name, value in args.items():
        if name not in props:
            return f"unknown argument {name!r}"
        types = types_of(props[name])
        if isinstance(value, bool) and "boolean" not in types and "bool" not in types:
            return f"{name}: a boolean"
        if isinstance(value, (list, dict)) and not types & {"array", "object"}:
            return f"{name}: a {type(value).__name__}"
        if isinstance(value, str) and types & {"number", "integer"} and (not value.isascii() or "_" in value):
            return f"{name}: non-ASCII or underscored digits for a number"
    return None


def enums(prop: dict) -> list:
    out = list(prop.get("enum", []))
    for option in prop.get("anyOf", []):
        out += option.get("enum", [])
    return out


# -- the property -------------------------------------------------------------------------------------------
def check_one(server: SyncServer, sim, schema: dict, tool: str, args: dict) -> str:
    """Call ``tool`` with ``args`` and check the properties; returns the outcome's code ('OK' for a success)."""
    COUNTS["fuzzed tool inputs"] += 1
    before = seq(sim)
    result = server.call(tool, args)  # a protocol error (McpError) would raise here and fail the test
    after = seq(sim)
    text = result_text(result)
    for marker in CRASH_MARKERS:
        assert marker not in text, f"{tool}({args!r}) -> {text}"
    if not result.is_error:
        assert schema_forbids(schema, args) is None, f"{tool}({args!r}) ran: {schema_forbids(schema, args)}"
        assert result.structured_content is not None, f"{tool}({args!r}) -> {text}"
        assert json.loads(result.content[0].text) == result.structured_content
        return "OK"
    code = error_code(text)
    forbidden = schema_forbids(schema, args)
    assert forbidden is None or code == "INVALID_INPUT", f"{tool}({args!r}): {forbidden}, yet {text}"
    assert code in KNOWN_CODES, f"{tool}({args!r}) -> unknown code in {text!r}"
    assert text.startswith(code + ": ") and len(text) > len(code) + 10, text
    if code == "INVALID_INPUT":
        assert after == before, f"{tool}({args!r}) was INVALID_INPUT but reached the exchange: " \
                                f"{sim.control(f'requests?since={before[1]}')}"
    return code


@pytest.mark.parametrize("tool", [t.name for t in ALL_TOOLS])
def test_fuzzed_arguments_never_crash_or_reach_the_exchange_unchecked(server, sim, schemas, tool):
    outcomes: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(args=args_strategy(tool, schemas[tool]))
    def run(args: dict) -> None:
        outcomes.add(check_one(server, sim, schemas[tool], tool, args))

    for good in good_calls(tool, schemas[tool]):
        run = example(args=good)(run)
    run()
    # The inputs were not all turned away at the door: some failed validation, and (for tools with fields)
    # some got past it to the guard and the exchange.
    assert "INVALID_INPUT" in outcomes or not schemas[tool].get("properties"), outcomes
    assert outcomes - {"INVALID_INPUT"}, outcomes
    COUNTS["fuzzed tools"] += 1


def test_the_property_sees_requests(server, sim, schemas):
    """The comparison INVALID_INPUT relies on does see a request that reached the exchange."""
    schema = schemas["binance_spot_price"]
    before = seq(sim)
    assert check_one(server, sim, schema, "binance_spot_price", {"symbol": "ZZZZUSDT"}) == "UNKNOWN_SYMBOL"  # -1121
    assert seq(sim) != before
    before = seq(sim)
    assert check_one(server, sim, schema, "binance_spot_price", {"symbol": "ZZZZ USDT"}) == "INVALID_INPUT"
    assert seq(sim) == before

