"""Request security on the simulator: API key, HMAC signature over query + body, timestamp / recvWindow, and
the order of those checks. Raw HTTP where python-binance cannot produce the request, both clients elsewhere."""

from __future__ import annotations

import inspect
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal as D

import pytest
from binance import AsyncClient, Client

from binance_mcp.simulator.app import sign
from tests.helpers import point_at
from tests.simulator.helpers import by_name, rejects

ORDER = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=90000"


def raw(sim, method: str, path: str, query: str = "", body: str = "", key: str | None = "default",
        headers: dict | None = None) -> tuple[int, dict, str]:
    """One hand-built request: (HTTP status, JSON body, Content-Type)."""
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if key is not None:
        hdrs["X-MBX-APIKEY"] = sim.api_key if key == "default" else key
    url = sim.base_url + path + ("?" + query if query else "")
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            return resp.status, json.loads(resp.read()), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Content-Type", "")


def now_ms() -> int:
    return int(time.time() * 1000)


def signed(secret: str, query: str = "", body: str = "", ts: int | None = None, in_body: bool = True) -> tuple[str, str]:
    """Add timestamp and signature to a query / body pair the way the docs describe (query + body, no '&')."""
    stamp = f"timestamp={now_ms() if ts is None else ts}"
    if in_body:
        body = f"{body}&{stamp}" if body else stamp
    else:
        query = f"{query}&{stamp}" if query else stamp
    signature = sign(secret, query + body)
    if in_body:
        return query, f"{body}&signature={signature}"
    return f"{query}&signature={signature}", body


def error_of(result: tuple[int, dict, str]) -> tuple[int, int, str]:
    status, body, _ = result
    return status, body.get("code"), body.get("msg")


@pytest.fixture(params=["sync", "async"])
async def connect(request, sim):
    """``call = connect(key=..., secret=..., recv_window=...)``; then ``await call("get_account")``."""
    opened = []

    def make(key: str | None = None, secret: str | None = None, recv_window: int | None = None):
        cls = Client if request.param == "sync" else AsyncClient
        kwargs = {"ping": False} if cls is Client else {}
        c = point_at(cls(key or sim.api_key, secret or sim.api_secret, **kwargs), sim.base_url)
        if recv_window is not None:
            c.REQUEST_RECVWINDOW = recv_window
        opened.append(c)
        return by_name(c)

    yield make
    for c in opened:
        closing = c.close_connection()
        if inspect.isawaitable(closing):
            await closing


# -- the HMAC itself ------------------------------------------------------------------------------------------


def test_signature_test_vectors_from_the_docs():
    spot = ("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
            "&timestamp=1499827319559")
    futures = ("2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
               "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
               "&timestamp=1591702613943")
    assert sign(*spot) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert sign(*futures) == "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_python_binance_and_the_simulator_agree_on_the_signature(sim, client):
    data = {"symbol": "BTCUSDT", "timestamp": 1499827319559}
    assert client._generate_signature(data) == sign(sim.api_secret, "symbol=BTCUSDT&timestamp=1499827319559")


# -- API key --------------------------------------------------------------------------------------------------


def test_public_endpoints_need_no_key(sim):
    assert raw(sim, "GET", "/api/v3/ping", key=None)[:2] == (200, {})
    assert raw(sim, "GET", "/api/v3/ticker/price", "symbol=BTCUSDT", key=None)[0] == 200


@pytest.mark.parametrize("key", [None, "", "has-dash", "x" * 129], ids=["missing", "empty", "illegal", "long"])
def test_missing_or_malformed_key(sim, key):
    query, _ = signed(sim.api_secret, "", in_body=False)
    assert error_of(raw(sim, "GET", "/api/v3/account", query, key=key)) == (401, -2014, "API-key format invalid.")


async def test_wrong_key(connect):
    err = await rejects(connect(key="SomeoneElsesKey0001"), "get_account")
    assert (err.status_code, err.code, err.message) == (401, -2015, "Invalid API-key, IP, or permissions for action.")


async def test_wrong_secret_is_a_bad_signature(connect):
    call = connect(secret="NotTheSecret")
    for method, params in (("get_account", {}), ("create_order", dict(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")), ("cancel_all_open_orders",
                                                                              {"symbol": "BTCUSDT"})):
        err = await rejects(call, method, **params)
        assert (err.status_code, err.code, err.message) == (400, -1022, "Signature for this request is not valid.")


# -- mandatory parameters ---------------------------------------------------------------------------------


def test_missing_timestamp_or_signature(sim):
    sig = sign(sim.api_secret, "recvWindow=5000")
    assert error_of(raw(sim, "GET", "/api/v3/account", f"recvWindow=5000&signature={sig}")) == (
        400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    assert error_of(raw(sim, "GET", "/api/v3/account", f"timestamp={now_ms()}")) == (
        400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")


# -- timing -------------------------------------------------------------------------------------------------

OUTSIDE = "Timestamp for this request is outside of the recvWindow."
AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."


@pytest.mark.parametrize("skew,recv_window,msg", [
    (15_000, None, OUTSIDE),  # python-binance sends recvWindow=10000; the server is 15 s ahead of the client
    (6_000, 5000, OUTSIDE),
    (-2_000, None, AHEAD),  # the server is 2 s behind: the client's timestamp is in its future
    (-30_000, 60000, AHEAD),
])
async def test_timestamp_outside_the_window_is_rejected(connect, sim, skew, recv_window, msg):
    sim.control("clock", {"skew_ms": skew})
    err = await rejects(connect(recv_window=recv_window), "get_account")
    assert (err.status_code, err.code, err.message) == (400, -1021, msg)


@pytest.mark.parametrize("skew,recv_window", [(5_000, None), (-500, None), (55_000, 60000), (3_000, 5000)])
async def test_timestamp_inside_the_window_is_accepted(connect, sim, skew, recv_window):
    sim.control("clock", {"skew_ms": skew})
    assert (await connect(recv_window=recv_window)("get_account"))["accountType"] == "SPOT"


async def test_recv_window_above_60000_is_rejected(connect):
    err = await rejects(connect(recv_window=60001), "get_account")
    assert (err.status_code, err.code) == (400, -1102) and "Cannot be greater than 60000" in err.message


@pytest.mark.parametrize("value,ok", [("5000.5", True), ("60000", True), ("abc", False), ("-1", False),
                                      ("1e4", False), ("5000.1234", False)])
def test_recv_window_format(sim, value, ok):
    query, _ = signed(sim.api_secret, f"recvWindow={value}", in_body=False)
    status, body, _ = raw(sim, "GET", "/api/v3/account", query)
    assert (status == 200) is ok
    if not ok:
        assert body["code"] == -1100


def test_timestamp_in_microseconds_is_accepted_on_spot(sim):
    query, _ = signed(sim.api_secret, ts=now_ms() * 1000, in_body=False)
    assert raw(sim, "GET", "/api/v3/account", query)[0] == 200


@pytest.mark.parametrize("stamp", ["%C2%B2", "12a", "-5", "1.5"], ids=["superscript-two", "letter", "negative",
                                                                        "decimal"])
def test_timestamp_with_illegal_characters(sim, stamp):
    query = f"timestamp={stamp}"
    query += "&signature=" + sign(sim.api_secret, query)
    status, code, msg = error_of(raw(sim, "GET", "/api/v3/account", query))
    assert (status, code) == (400, -1100) and "'timestamp'" in msg


# -- the signature covers the raw query + body -----------------------------------------------------------------


def test_signature_is_case_insensitive(sim):
    query, _ = signed(sim.api_secret, in_body=False)
    head, sig = query.rsplit("=", 1)
    assert raw(sim, "GET", "/api/v3/account", f"{head}={sig.upper()}")[0] == 200


def test_non_ascii_signature_is_invalid_not_a_server_error(sim):
    assert error_of(raw(sim, "GET", "/api/v3/account", f"timestamp={now_ms()}&signature=%C3%A9")) == (
        400, -1022, "Signature for this request is not valid.")


def test_mixed_query_and_body_post_signs_the_concatenation_without_ampersand(sim, client):
    query, body = "symbol=BTCUSDT&side=BUY&type=LIMIT", "timeInForce=GTC&quantity=0.01&price=90000"
    q, b = signed(sim.api_secret, query, body)
    status, order, _ = raw(sim, "POST", "/api/v3/order", q, b)
    assert status == 200 and order["status"] == "NEW" and D(order["origQty"]) == D("0.01")
    assert client.get_order(symbol="BTCUSDT", orderId=order["orderId"])["price"] == "90000.00000000"
    # signing query + "&" + body is what a careless client does: rejected
    body_ts = f"{body}&timestamp={now_ms()}"
    wrong = f"{body_ts}&signature={sign(sim.api_secret, query + '&' + body_ts)}"
    assert error_of(raw(sim, "POST", "/api/v3/order", query, wrong))[1] == -1022


def test_query_string_value_wins_over_the_body(sim, client):
    query, body = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01", "quantity=0.02&price=90000"
    q, b = signed(sim.api_secret, query, body)
    status, order, _ = raw(sim, "POST", "/api/v3/order", q, b)
    assert status == 200 and D(order["origQty"]) == D("0.01")
    assert D(client.get_open_orders(symbol="BTCUSDT")[0]["origQty"]) == D("0.01")


def test_signature_in_the_query_with_parameters_in_the_body(sim):
    q, b = signed(sim.api_secret, "", ORDER, in_body=False)
    assert q.startswith("timestamp=")
    status, order, _ = raw(sim, "POST", "/api/v3/order", q, ORDER)
    assert status == 200 and order["symbol"] == "BTCUSDT"


def test_signature_covers_the_raw_percent_encoded_bytes(sim):
    body = f"{ORDER}&newClientOrderId=a%2Db&timestamp={now_ms()}"
    decoded = body.replace("%2D", "-")
    assert error_of(raw(sim, "POST", "/api/v3/order", "", f"{body}&signature={sign(sim.api_secret, decoded)}"))[1] \
        == -1022
    status, order, _ = raw(sim, "POST", "/api/v3/order", "", f"{body}&signature={sign(sim.api_secret, body)}")
    assert status == 200 and order["clientOrderId"] == "a-b"


def test_signature_covers_the_raw_percent_encoded_query_string(sim):
    query = f"recvWindow=5000&timestamp={now_ms()}&omitZeroBalances=%74rue"  # %74 is "t"
    over_decoded = sign(sim.api_secret, query.replace("%74", "t"))
    assert error_of(raw(sim, "GET", "/api/v3/account", f"{query}&signature={over_decoded}"))[1] == -1022
    assert raw(sim, "GET", "/api/v3/account", f"{query}&signature={sign(sim.api_secret, query)}")[0] == 200


def test_delete_reads_parameters_from_the_query_string_too(sim, client):
    order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                price="90000")
    q, _ = signed(sim.api_secret, f"symbol=BTCUSDT&orderId={order['orderId']}", in_body=False)
    status, cancelled, _ = raw(sim, "DELETE", "/api/v3/order", q)
    assert status == 200 and cancelled["status"] == "CANCELED"


# -- the order of the checks ------------------------------------------------------------------------------------


def test_checks_run_key_then_mandatory_then_signature_then_timing_then_parameters(sim):
    stale = now_ms() - 600_000
    bad_sig = f"timestamp={stale}&signature=00"
    assert error_of(raw(sim, "GET", "/api/v3/account", bad_sig, key="WrongKey"))[1] == -2015
    assert error_of(raw(sim, "GET", "/api/v3/account", "signature=00"))[1] == -1102
    assert error_of(raw(sim, "GET", "/api/v3/account", bad_sig))[1] == -1022
    q, _ = signed(sim.api_secret, "foo=1", ts=stale, in_body=False)
    assert error_of(raw(sim, "GET", "/api/v3/account", q))[1] == -1021
    q, _ = signed(sim.api_secret, "foo=1", in_body=False)
    assert error_of(raw(sim, "GET", "/api/v3/account", q))[1] == -1104


def test_futures_endpoints_use_the_same_security(sim):
    q, _ = signed(sim.api_secret, in_body=False)
    assert raw(sim, "GET", "/fapi/v2/balance", q)[0] == 200
    assert error_of(raw(sim, "GET", "/fapi/v2/balance", q, key="WrongKey"))[:2] == (401, -2015)
    assert error_of(raw(sim, "GET", "/fapi/v2/balance", q.replace("signature=", "signature=0")))[:2] == (400, -1022)


def test_errors_are_always_json_code_and_msg(sim):
    q, _ = signed(sim.api_secret, in_body=False)
    results = [
        raw(sim, "GET", "/api/v3/account", q, key=None),
        raw(sim, "GET", "/api/v3/account", q, key="WrongKey"),
        raw(sim, "GET", "/api/v3/account", q + "0"),
        raw(sim, "GET", "/api/v3/account", "timestamp=1"),
        raw(sim, "GET", "/api/v3/nothing-here"),
        raw(sim, "PUT", "/api/v3/order", body=ORDER),
        raw(sim, "GET", "/api/v3/ticker/price", "symbol=NOPE"),
        raw(sim, "GET", "/api/v3/depth", "symbol=BTCUSDT&limit=abc"),
    ]
    for status, body, content_type in results:
        assert status >= 400 and content_type.startswith("application/json")
        assert set(body) == {"code", "msg"} and isinstance(body["code"], int) and body["code"] < 0
        assert isinstance(body["msg"], str) and body["msg"]
