"""Request weight and order-count limits: headers on every response, 429 (-1003 / -1015) with Retry-After,
418 after repeated 429s, and resetting. The limits control makes the budgets tiny so a handful of requests
reaches them; windows are aligned on the wall clock, so loops allow for one window rolling over mid-test."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import requests
from binance.exceptions import BinanceAPIException

BTC = {"symbol": "BTCUSDT"}
WEIGHT_HEADERS = ("X-MBX-USED-WEIGHT-1M", "X-MBX-USED-WEIGHT")


def used(headers) -> int:
    assert headers["X-MBX-USED-WEIGHT-1M"] == headers["X-MBX-USED-WEIGHT"]
    return int(headers["X-MBX-USED-WEIGHT-1M"])


def until_error(call, attempts: int = 12) -> tuple[int, BinanceAPIException]:
    """Call until the simulator refuses; return how many calls succeeded first and the error."""
    for ok in range(attempts):
        try:
            call()
        except BinanceAPIException as exc:
            return ok, exc
    raise AssertionError(f"no error after {attempts} calls")


def limits(sim, **values) -> None:
    sim.control("limits", {"reset_counters": True, **values})


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v3/ping"), ("GET", "/api/v3/exchangeInfo"), ("GET", "/api/v3/ticker/price?symbol=NOPE"),
    ("GET", "/api/v3/account"), ("GET", "/fapi/v1/ping"), ("GET", "/fapi/v1/premiumIndex?symbol=BTCUSDT"),
    ("GET", "/fapi/v2/account"), ("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/nonexistent"),
])
def test_every_response_carries_the_used_weight(sim, method, path):
    resp = requests.request(method, sim.base_url + path, timeout=10)
    assert resp.headers["Content-Type"].startswith("application/json")
    assert all(h in resp.headers for h in WEIGHT_HEADERS), (resp.status_code, dict(resp.headers))
    assert used(resp.headers) >= 0


def test_weight_counts_per_market_with_each_routes_cost(client, sim):
    limits(sim)
    client.futures_account()
    first = used(client.response.headers)
    client.futures_position_information()
    second = used(client.response.headers)
    assert first == 5 and second in (10, 5)  # 5 each (5 again only if the minute rolled over in between)
    client.get_exchange_info()
    spot = used(client.response.headers)
    assert spot == 20  # spot has its own budget: the futures weight is not in it
    client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                price="90000")
    assert used(client.response.headers) in (second, 0), "futures orders cost no IP weight"


def test_order_count_headers_on_successful_orders(client, sim):
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000"})
    limits(sim)
    counts = []
    for _ in range(2):
        client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                    price="90000")
        h = client.response.headers
        assert "X-MBX-ORDER-COUNT-1D" not in h
        counts.append((int(h["X-MBX-ORDER-COUNT-10S"]), int(h["X-MBX-ORDER-COUNT-1M"])))
    assert counts[0] == (1, 1)
    assert counts[1] in ((2, 2), (1, 2), (1, 1))  # (1, _) only if the 10 s window rolled over in between
    client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                        price="90000")
    h = client.response.headers
    assert int(h["X-MBX-ORDER-COUNT-10S"]) == 1 and int(h["X-MBX-ORDER-COUNT-1D"]) == 1
    assert "X-MBX-ORDER-COUNT-1M" not in h
    client.futures_get_open_orders(**BTC)
    assert not any(k.upper().startswith("X-MBX-ORDER-COUNT") for k in client.response.headers)


def test_too_much_weight_is_429_with_retry_after(client, sim):
    limits(sim, futures_weight_per_minute=12)
    ok, err = until_error(client.futures_account)  # weight 5 each
    assert 2 <= ok <= 4 and err.status_code == 429 and err.code == -1003
    assert "current limit is 12 request weight per 1 MINUTE" in err.message
    retry = int(err.response.headers["Retry-After"])
    assert 1 <= retry <= 60 and used(err.response.headers) > 12
    client.ping()  # the spot budget is separate
    assert client.get_account()["balances"]


def test_a_request_refused_for_weight_is_not_executed(client, sim):
    sim.control("price", {"symbol": "BTCUSDT", "price": "97000"})
    limits(sim, spot_weight_per_minute=3)
    ok, err = until_error(lambda: client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                                      quantity="0.001", price="90000"))
    assert err.status_code == 429 and err.code == -1003 and 3 <= ok <= 6
    limits(sim, spot_weight_per_minute=6000)
    assert len(client.get_all_orders(symbol="BTCUSDT")) == ok, "the refused order must not exist"


def test_too_many_futures_orders_is_429_minus_1015(client, sim):
    sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000"})
    limits(sim, futures_orders_per_10s=2)
    ok, err = until_error(lambda: client.futures_create_order(**BTC, side="BUY", type="LIMIT", timeInForce="GTC",
                                                              quantity="0.01", price="90000"))
    assert 2 <= ok <= 4 and err.status_code == 429 and err.code == -1015
    assert "2 orders per 10 SECOND" in err.message
    assert 1 <= int(err.response.headers["Retry-After"]) <= 10
    assert len(client.futures_get_open_orders(**BTC)) == ok, "the refused order must not exist"


def test_too_many_spot_orders_per_day(client, sim):
    limits(sim, spot_orders_per_day=1)
    client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                        price="90000")
    with pytest.raises(BinanceAPIException) as info:
        client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                            price="90000")
    assert info.value.status_code == 429 and info.value.code == -1015 and "1 DAY" in info.value.message
    assert int(info.value.response.headers["Retry-After"]) >= 1


def test_repeated_429s_lead_to_a_418_ban_for_everything(client, sim):
    limits(sim, futures_weight_per_minute=1, ban_after_429s=2, ban_seconds=120)
    statuses = []
    for _ in range(12):
        try:
            client.futures_ping()
            statuses.append(200)
        except BinanceAPIException as exc:
            statuses.append(exc.status_code)
            if exc.status_code == 418:
                ban = exc
                break
    else:
        raise AssertionError(f"no 418 in {statuses}")
    assert statuses.count(429) >= 2 and statuses[-1] == 418
    assert ban.code == -1003 and "banned until" in ban.message
    assert 1 <= int(ban.response.headers["Retry-After"]) <= 120
    with pytest.raises(BinanceAPIException) as info:
        client.ping()  # the ban is per IP: spot too
    assert info.value.status_code == 418
    limits(sim)  # reset_counters lifts the ban
    assert client.ping() == {} and client.futures_ping() == {}
    assert used(client.response.headers) <= 2


def test_reset_counters_and_limits_in_exchange_info(client, sim):
    limits(sim, futures_weight_per_minute=50, futures_orders_per_minute=7)
    info = client.futures_exchange_info()
    by_type = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
    assert by_type[("REQUEST_WEIGHT", "MINUTE")] == 50 and by_type[("ORDERS", "MINUTE")] == 7
    for _ in range(5):
        client.futures_account()
    assert used(client.response.headers) >= 5
    sim.control("limits", {"reset_counters": True})
    client.futures_ping()
    assert used(client.response.headers) == 1


def test_sim_reset_restores_the_default_limits(client, sim):
    limits(sim, futures_weight_per_minute=1, spot_weight_per_minute=1)
    sim.control("reset", {})
    for _ in range(5):
        client.futures_ping()
        client.ping()
    by_type = {(r["rateLimitType"], r["interval"]): r["limit"] for r in client.futures_exchange_info()["rateLimits"]}
    assert by_type[("REQUEST_WEIGHT", "MINUTE")] == 2400


def test_limits_control_rejects_unknown_names(sim):
    req = urllib.request.Request(sim.base_url + "/_sim/limits", data=json.dumps({"spot_weight": 1}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)  # noqa: S310 - loopback
    assert info.value.code == 400 and "spot_weight" in json.loads(info.value.read())["error"]


async def test_async_client_sees_headers_and_429(async_client, sim):
    limits(sim, futures_weight_per_minute=7)
    await async_client.futures_account()
    assert int(async_client.response.headers["X-MBX-USED-WEIGHT-1M"]) == 5
    with pytest.raises(BinanceAPIException) as info:
        for _ in range(6):
            await async_client.futures_account()
    assert info.value.status_code == 429 and info.value.code == -1003
    assert int(info.value.response.headers["Retry-After"]) >= 1
