"""Symbol and parameter tricks, one row each: rejected before the policy and before any request, or normalised
into exactly the plain value Binance expects.

A rejected row must answer INVALID_INPUT, leave the simulator's request log untouched (nothing reached the
exchange) and leave exactly one audit record, of the refusal (rule ``input``: the policy never decided it). An accepted row must send the normalised value: the
simulator's own request log shows what arrived, never exponent notation, a float's long expansion, or a look-alike.
The last test sends raw JSON-RPC lines (NaN, Infinity, 1e400, a 5000-digit number, broken JSON) over stdio.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.hardening.helpers import (
    COUNTS,
    RawStdio,
    SyncServer,
    raw_text,
    result_text,
    seq,
    server_env,
)
from tests.helpers import simulator, write_policy

REJECT = "reject"
ORDER = "binance_spot_place_order"
ORDER_ARGS = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
PRICE = "binance_spot_price"

# (id, tool, arguments (merged into ORDER_ARGS for the order tool), REJECT or the params the exchange must receive)
SYMBOLS = [
    ("lower-case", "btcusdt", {"symbol": "BTCUSDT"}),
    ("mixed-case", "BtcUsdt", {"symbol": "BTCUSDT"}),
    ("surrounding-spaces", "  BTCUSDT  ", {"symbol": "BTCUSDT"}),
    ("trailing-newline", "BTCUSDT\n", {"symbol": "BTCUSDT"}),
    ("tabs-crlf", "\tbtcusdt\r\n", {"symbol": "BTCUSDT"}),
    ("cyrillic-look-alike", "ВТСUSDT", REJECT),
    ("fullwidth", "ＢＴＣＵＳＤＴ", REJECT),
    ("long-s", "btcuſdt", REJECT),  # 'ſ'.upper() == 'S': would become BTCUSDT if upper-cased first
    ("dotless-i", "ıcpusdt", REJECT),  # 'ı'.upper() == 'I'
    ("kelvin-sign", "\u212aAVAUSDT", REJECT),  # 'K' (Kelvin) lower-cases to ASCII 'k'
    ("zero-width-space", "BTC\u200bUSDT", REJECT),
    ("nul", "BTCUSDT\x00", REJECT),
    ("query-injection", "BTCUSDT&side=SELL", REJECT),
    ("header-injection", "BTCUSDT\r\nX-MBX-APIKEY: x", REJECT),
    ("percent-encoded", "BTC%55SDT", REJECT),
    ("inner-space", "BTC USDT", REJECT),
    ("inner-newline", "BTC\nUSDT", REJECT),
    ("empty", "", REJECT),
    ("blank", "   ", REJECT),
    ("too-long", "A" * 50, REJECT),
    ("one-char", "B", REJECT),
    ("number", 123, REJECT),
    ("list", ["BTCUSDT"], REJECT),
    ("null", None, REJECT),
]
QUANTITIES = [
    ("plain", "0.001", {"quantity": "0.001"}),
    ("exponent", "1e-3", {"quantity": "0.001"}),
    ("exponent-upper", "1E-3", {"quantity": "0.001"}),
    ("padded", " 0.001 ", {"quantity": "0.001"}),
    ("trailing-zeros", "0.0010000000", {"quantity": "0.001"}),
    ("json-float", 0.001, {"quantity": "0.001"}),
    ("json-float-0.1", 0.1, {"quantity": "0.1"}),  # never 0.1000000000000000055511151231257827
    ("huge-exponent", "1e40", REJECT),
    ("forty-nines", "9" * 40, REJECT),
    ("json-huge-int", 10**40, REJECT),
    ("overflowing-exponent", "1e999999999", REJECT),
    ("underflowing-exponent", "1e-999999999", REJECT),
    ("negative", "-0.001", REJECT),
    ("negative-json", -1, REJECT),
    ("zero", "0", REJECT),
    ("zero-json", 0, REJECT),
    ("minus-zero", "-0", REJECT),
    ("nine-decimals", "0.000000001", REJECT),
    ("nine-decimals-json", 1e-9, REJECT),
    ("nan", "NaN", REJECT),
    ("nan-lower", "nan", REJECT),
    ("snan", "sNaN", REJECT),
    ("infinity", "Infinity", REJECT),
    ("minus-infinity", "-Infinity", REJECT),
    ("inf", "inf", REJECT),
    ("true", True, REJECT),
    ("false", False, REJECT),
    ("fullwidth-digits", "０.００１", REJECT),
    ("arabic-indic-digits", "٠.٠٠١", REJECT),
    ("underscores", "0.000_1", REJECT),
    ("hex", "0x1", REJECT),
    ("comma-decimal", "0,001", REJECT),
    ("with-unit", "0.001BTC", REJECT),
    ("empty", "", REJECT),
    ("list", ["0.001"], REJECT),
    ("object", {"value": "0.001"}, REJECT),
]
OTHERS = [  # (id, tool, arguments, expected)
    ("price-json-float", ORDER, {"price": 90000.1}, {"price": "90000.1"}),
    ("price-exponent", ORDER, {"price": "9E+4"}, {"price": "90000"}),
    ("price-json-int", ORDER, {"price": 90000}, {"price": "90000"}),
    ("extra-side-param", ORDER, {"side2": "SELL"}, REJECT),
    ("extra-signature", ORDER, {"signature": "00"}, REJECT),
    ("extra-recvWindow", ORDER, {"recvWindow": 60000}, REJECT),
    ("side-lower-case", ORDER, {"side": "buy"}, REJECT),
    ("type-look-alike", ORDER, {"type": "LІMIT"}, REJECT),  # Cyrillic І
    ("client-id-injection", ORDER, {"newClientOrderId": "a&side=SELL"}, REJECT),
    ("client-id-unicode", ORDER, {"newClientOrderId": "ordеr1"}, REJECT),  # Cyrillic е
    ("cancel-order-id-true", "binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": True}, REJECT),
    ("cancel-order-id-huge", "binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": 2**64}, REJECT),
    ("cancel-order-id-float", "binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": 1.5}, REJECT),
    ("cancel-order-id-fullwidth", "binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": "１"}, REJECT),
    ("leverage-true", "binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": True}, REJECT),
    ("leverage-zero", "binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": 0}, REJECT),
    ("leverage-string", "binance_futures_change_leverage", {"symbol": "BTCUSDT", "leverage": "5"}, {"leverage": "5"}),
    ("limit-true", "binance_spot_order_history", {"symbol": "BTCUSDT", "limit": True}, REJECT),
    ("time-true", "binance_spot_trade_history", {"symbol": "BTCUSDT", "startTime": True}, REJECT),
    ("time-negative", "binance_spot_trade_history", {"symbol": "BTCUSDT", "startTime": -1}, REJECT),
    ("funding-overflow", "binance_calculate_funding_cost",
     {"symbol": "BTCUSDT", "positionSize": "1e999999999", "holdHours": "8"}, REJECT),
    ("funding-huge-int", "binance_calculate_funding_cost",
     {"symbol": "BTCUSDT", "positionSize": 10**4000, "holdHours": "8"}, REJECT),
    ("asset-long-s", "binance_spot_balances", {"asset": "ſ"}, REJECT),
]
CASES = ([(f"symbol-{i}", ORDER, {"symbol": v}, e) for i, v, e in SYMBOLS]
         + [(f"price-symbol-{i}", PRICE, {"symbol": v}, e) for i, v, e in SYMBOLS if v is not None]
         + [(f"quantity-{i}", ORDER, {"quantity": v}, e) for i, v, e in QUANTITIES]
         + OTHERS)
PATHS = {ORDER: "/api/v3/order", PRICE: "/api/v3/ticker/price", "binance_futures_change_leverage": "/fapi/v1/leverage"}


@pytest.fixture(scope="module")
def sim():
    with simulator() as rs:
        yield rs


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tricks")


@pytest.fixture(scope="module")
def server(sim, state_dir):
    srv = SyncServer(server_env(sim, state_dir / "state", write_policy(state_dir / "policy.yaml")))
    yield srv
    srv.close()


def audit_lines(state_dir) -> list[str]:
    path = state_dir / "state" / "audit.jsonl"
    return path.read_text().splitlines() if path.exists() else []


NUMERIC = re.compile(r"[-+0-9.eE]*[0-9][-+0-9.eE]*")
PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def plain(value: str) -> bool:
    """A parameter as Binance wants it: printable ASCII, numbers without exponent or trailing zeros, no bool repr."""
    if not (value.isascii() and value.isprintable()) or value in ("True", "False"):
        return False
    if NUMERIC.fullmatch(value):
        return bool(PLAIN.fullmatch(value)) and not ("." in value and value.endswith("0"))
    return True


@pytest.mark.parametrize(("tool", "args", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trick(server, sim, state_dir, tool, args, expected):
    COUNTS["trick cases"] += 1
    sim.control("reset", {})
    call = {**ORDER_ARGS, **args} if tool == ORDER else args
    before, audited = seq(sim), audit_lines(state_dir)
    result = server.call(tool, call)
    text = result_text(result)
    log = sim.control(f"requests?since={before[1]}")
    if expected == REJECT:
        assert result.is_error and text.startswith("INVALID_INPUT: "), text
        assert "Nothing was sent to the exchange" in text, text
        assert seq(sim) == before, log  # nothing reached the exchange
        new = [json.loads(line) for line in audit_lines(state_dir)[len(audited):]]
        assert [(r["tool"], r["decision"]["code"], r["decision"]["rule"], r["outcome"]) for r in new] == [
            (tool, "INVALID_INPUT", "input", {"status": "not_run"})], new  # audited; the policy never decided it
        assert f"INVALID_INPUT: {new[0]['decision']['reason']}" == text
        return
    assert not result.is_error, text
    sent = [e for e in log if e["path"] == PATHS[tool]]
    assert len(sent) == 1, log
    params = sent[0]["params"]
    for name, value in expected.items():
        assert params[name] == value, (name, params)
    assert all(plain(v) for v in params.values()), params


def test_the_plain_check_can_fail():
    assert plain("0.001") and plain("90000") and plain("BTCUSDT") and plain("GTC")
    for bad in ("1E-3", "1e-3", "0.10", "True", "BTCUSDT\n", "ВТС"):
        assert not plain(bad), bad


def test_raw_json_tricks_over_stdio(sim, tmp_path):
    """Tokens a JSON library might turn into numbers, a number too long to parse, and lines that are not JSON:
    the server answers INVALID_INPUT (or drops a line it cannot parse), sends nothing, and keeps serving."""
    sim.control("reset", {})
    env = server_env(sim, tmp_path / "state", write_policy(tmp_path / "policy.yaml"))
    server = RawStdio(env, tmp_path / "stderr.txt")
    try:
        server.initialize()
        head = '{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "price": "90000", "quantity": '
        before = seq(sim)
        for token in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "true", "[]", '"0x1p-3"'):
            COUNTS["trick cases"] += 1
            text = raw_text(server.call(ORDER, head + token + "}"))
            assert text.startswith("INVALID_INPUT: "), (token, text)
        # Not parseable at all: a 5000-digit number (beyond Python's int parsing limit), cut and broken JSON.
        ids = [server.request(ORDER, head + "9" * 5000 + "}")]
        server.send('{"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {"name": "binance_spot_pr')
        server.send("not json at all")
        server.send(b"\xff\xfe garbage".decode("latin-1"))
        COUNTS["trick cases"] += 4
        assert seq(sim) == before  # none of it reached the exchange
        price = server.call(PRICE, {"symbol": "BTCUSDT"})  # still serving, in order
        assert not price["isError"] and price["structuredContent"]["prices"][0]["symbol"] == "BTCUSDT"
        answered = {i: server.responses.get(i) for i in ids}
        for answer in answered.values():  # the MCP SDK drops unparseable lines; if it answers, never a success
            assert answer is None or "error" in answer or answer["result"]["isError"], answer
    finally:
        assert server.close() == 0
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
