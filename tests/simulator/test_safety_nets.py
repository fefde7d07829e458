"""The simulator's side of Binance's safety nets, through the real python-binance client over HTTP:
``POST /fapi/v1/countdownCancelAll`` (the dead man's switch) and ``GET /sapi/v1/account/apiRestrictions``
(what the key may do), with Binance's semantics and parameter checks. Time moves with ``/_sim/clock``
(``advance_ms``), never by sleeping."""

from __future__ import annotations

import pytest
from binance import Client

from binance_mcp.simulator.config import DEFAULT_API_RESTRICTIONS, parse_api_restrictions
from tests.helpers import point_at, simulator
from tests.simulator.helpers import api_error

BTC = {"symbol": "BTCUSDT"}


def _orders(client: Client) -> tuple[list, list]:
    """(regular, conditional) open futures orders of BTCUSDT, read from the exchange."""
    return client.futures_get_open_orders(**BTC), client.futures_get_open_orders(**BTC, conditional=True)


def _place(client: Client, sim) -> None:
    """One resting limit order and one conditional (algo) order on BTCUSDT, one limit order on ETHUSDT."""
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
    client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="90000")
    client.futures_create_order(**BTC, side="BUY", type="STOP_MARKET", stopPrice="96000", quantity="0.01")
    sim.control("price", {"symbol": "ETHUSDT", "market": "futures", "price": "3000", "mark": "3000"})
    client.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                price="2900")


def _advance(sim, ms: int) -> dict:
    return sim.control("clock", {"advance_ms": ms})


def _armed(sim) -> dict:
    return sim.control("state")["countdowns"]["armed"]


def test_countdown_arms_answers_like_binance_and_expiry_cancels_that_symbol_only(client, sim):
    _place(client, sim)
    answer = client.futures_countdown_cancel_all(**BTC, countdownTime=60000)
    assert answer == {"symbol": "BTCUSDT", "countdownTime": "60000"}  # Binance's shape: the time as a string
    assert _armed(sim)["BTCUSDT"]["countdownTime"] == 60000
    _advance(sim, 59000)
    assert "BTCUSDT" in _armed(sim)  # not yet
    sim.control("clock", {"skew_ms": 0})
    regular, algo = _orders(client)
    assert len(regular) == 1 and len(algo) == 1
    _advance(sim, 61000)
    state = sim.control("state")
    assert state["countdowns"]["armed"] == {}
    (fired,) = state["countdowns"]["fired"]
    assert fired["symbol"] == "BTCUSDT" and len(fired["orderIds"]) == 1 and len(fired["algoIds"]) == 1
    sim.control("clock", {"skew_ms": 0})  # signed requests need the clock back
    assert _orders(client) == ([], [])  # regular and conditional orders of BTCUSDT are gone
    (eth,) = client.futures_get_open_orders(symbol="ETHUSDT")  # another symbol's order is untouched
    assert eth["status"] == "NEW"
    assert client.futures_get_order(**BTC, orderId=fired["orderIds"][0])["status"] == "CANCELED"


def test_a_new_call_resets_the_countdown_and_zero_cancels_it(client, sim):
    _place(client, sim)
    client.futures_countdown_cancel_all(**BTC, countdownTime=30000)
    _advance(sim, 20000)
    sim.control("clock", {"skew_ms": 0})
    client.futures_countdown_cancel_all(**BTC, countdownTime=30000)  # a heartbeat: 30 s from now again
    _advance(sim, 25000)  # 45 s after the first call, 25 s after the second
    assert "BTCUSDT" in _armed(sim)
    sim.control("clock", {"skew_ms": 0})
    assert client.futures_countdown_cancel_all(**BTC, countdownTime=0) == {"symbol": "BTCUSDT",
                                                                          "countdownTime": "0"}
    assert _armed(sim) == {}
    _advance(sim, 3_600_000)
    state = sim.control("state")
    assert state["countdowns"]["fired"] == []
    sim.control("clock", {"skew_ms": 0})
    regular, algo = _orders(client)
    assert len(regular) == 1 and len(algo) == 1  # disarmed: nothing cancelled


def test_expiry_is_seen_by_the_next_signed_request_too(client, sim):
    """No control call in between: the countdown has fired before the exchange answers a request."""
    _place(client, sim)
    client.futures_countdown_cancel_all(**BTC, countdownTime=60000)
    sim.sim.clock.skew_ms = 61000  # the clock moves without a control call (whose answer would fire it)
    client.timestamp_offset = 61000  # the client's clock follows, so its signed requests are accepted
    assert _orders(client) == ([], [])
    sim.sim.clock.skew_ms = 0


@pytest.mark.parametrize("params, code", [
    ({"countdownTime": "1000"}, -1102),  # symbol missing
    ({"symbol": "BTCUSDT"}, -1102),  # countdownTime missing
    ({"symbol": "BTCUSDT", "countdownTime": "-5"}, -1100),
    ({"symbol": "BTCUSDT", "countdownTime": "1.5"}, -1100),
    ({"symbol": "NOPEUSDT", "countdownTime": "1000"}, -1121),
    ({"symbol": "BTCUSDT", "countdownTime": "1000", "side": "BUY"}, -1104),  # a parameter it does not take
])
def test_countdown_parameters_are_checked_like_other_endpoints(client, sim, params, code):
    err = api_error(client.futures_countdown_cancel_all, **params)
    assert err.code == code
    assert _armed(sim) == {}


def test_countdown_costs_binance_weight_10(client, sim):
    since = sim.control("state")["last_seq"]
    client.futures_countdown_cancel_all(**BTC, countdownTime=5000)
    (entry,) = [e for e in sim.control(f"requests?since={since}") if e["path"] == "/fapi/v1/countdownCancelAll"]
    assert entry["weight"] == 10 and entry["status"] == 200


def test_countdown_needs_a_signature(sim):
    bad = Client(sim.api_key, "not-the-secret", ping=False)
    point_at(bad, sim.base_url)
    assert api_error(bad.futures_countdown_cancel_all, **BTC, countdownTime=1000).code == -1022
    assert _armed(sim) == {}


def test_reset_clears_countdowns(client, sim):
    client.futures_countdown_cancel_all(**BTC, countdownTime=1000)
    sim.control("reset", {})
    assert _armed(sim) == {}


# -- apiRestrictions ---------------------------------------------------------------------------------------------
def test_api_restrictions_default_is_a_safe_trading_key(client):
    answer = client.get_account_api_permissions()
    assert answer == DEFAULT_API_RESTRICTIONS
    assert answer["enableReading"] and answer["enableSpotAndMarginTrading"] and answer["enableFutures"]
    assert not (answer["enableWithdrawals"] or answer["enableInternalTransfer"]
                or answer["permitsUniversalTransfer"])
    assert answer["ipRestrict"] is True


def test_api_restrictions_match_the_spot_openapi_schema(client):
    import yaml

    from tests.simulator.test_openapi_shapes import SPEC, Validator, to_json_schema

    spec = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    raw = spec["paths"]["/sapi/v1/account/apiRestrictions"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    schema = to_json_schema(raw, spec)
    errors = list(Validator(schema).iter_errors(client.get_account_api_permissions()))
    assert errors == []
    assert list(Validator(schema).iter_errors({"ipRestrict": False})) != []  # the check is not vacuous


def test_api_restrictions_are_configurable_and_signed():
    with simulator(api_restrictions={"enableWithdrawals": True, "ipRestrict": False}) as rs:
        c = point_at(Client(rs.api_key, rs.api_secret, ping=False), rs.base_url)
        answer = c.get_account_api_permissions()
        assert answer["enableWithdrawals"] is True and answer["ipRestrict"] is False
        assert answer["enableFutures"] is True  # merged over the default
        bad = point_at(Client(rs.api_key, "wrong", ping=False), rs.base_url)
        assert api_error(bad.get_account_api_permissions).code == -1022


def test_api_restrictions_absent_answers_404_like_a_testnet():
    with simulator(api_restrictions=None) as rs:
        c = point_at(Client(rs.api_key, rs.api_secret, ping=False), rs.base_url)
        err = api_error(c.get_account_api_permissions)
        assert err.status_code == 404


def test_parse_api_restrictions():
    assert parse_api_restrictions('{"enableWithdrawals": true, "ipRestrict": false}') == {
        **DEFAULT_API_RESTRICTIONS, "enableWithdrawals": True, "ipRestrict": False}
    assert parse_api_restrictions("absent") is None
    for bad, words in (("{", "not JSON"), ("[1]", "JSON object"), ('{"enableWithdrawal": true}', "unknown field"),
                       ('{"ipRestrict": "no"}', "true or false")):
        with pytest.raises(ValueError, match=words):
            parse_api_restrictions(bad)
