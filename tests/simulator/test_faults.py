"""Injected faults seen through the real python-binance clients: latency, 5xx before and after the work is
done, dropped connections before and after, non-JSON bodies; faults are consumed after ``count``; and the
``/_sim/`` controls do not exist unless the simulator is started with ``controls=True``."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
import requests
from binance import AsyncClient, Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.runner import start_in_thread
from tests.helpers import point_at

BTC = {"symbol": "BTCUSDT"}
ORDER = {**BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01"}


def fault(sim, kind: str, path: str = "/fapi/v1/order", **extra) -> None:
    sim.control("faults", {"kind": kind, "path": path, "count": 1, **extra})


def order_by_client_id(client, cid: str) -> dict | None:
    try:
        return client.futures_get_order(**BTC, origClientOrderId=cid)
    except BinanceAPIException as exc:
        assert exc.code == -2013
        return None


def problems(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.split(".")[0] in ("aiohttp", "asyncio", "binance_mcp")]


def wait_until_served(sim, path: str, since: int, count: int) -> None:
    """Let a delayed request finish on the server, so it cannot charge weight in a later test."""
    for _ in range(200):
        if sum(e["path"] == path for e in sim.control(f"requests?since={since}")) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the delayed {path} never completed")


@pytest.fixture
def short_timeout_client(sim):
    c = point_at(Client(sim.api_key, sim.api_secret, ping=False, requests_params={"timeout": 0.5}), sim.base_url)
    yield c
    c.close_connection()


def test_latency_makes_a_client_timeout_expire_once(short_timeout_client, sim):
    fault(sim, "latency", "/fapi/v1/time", latency_ms=2000)
    since = sim.control("state")["last_seq"]
    with pytest.raises(requests.exceptions.Timeout):
        short_timeout_client.futures_time()
    assert short_timeout_client.futures_time()["serverTime"] > 0  # count 1: consumed
    wait_until_served(sim, "/fapi/v1/time", since, 2)  # the delayed one and the one after


async def test_latency_with_the_async_client(async_client, sim):
    fault(sim, "latency", "/fapi/v1/ping", latency_ms=2000)
    since = sim.control("state")["last_seq"]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(async_client.futures_ping(), timeout=0.3)
    assert await asyncio.wait_for(async_client.futures_ping(), timeout=5) == {}
    await asyncio.to_thread(wait_until_served, sim, "/fapi/v1/ping", since, 2)


@pytest.mark.parametrize("status, code", [(None, -1008), (500, -1001), (502, -1001)])
def test_error_5xx_before_creates_nothing(client, sim, status, code):
    fault(sim, "error_5xx", **({"status": status} if status else {}))
    with pytest.raises(BinanceAPIException) as info:
        client.futures_create_order(**ORDER, newClientOrderId="five-before")
    assert info.value.status_code == (status or 503) and info.value.code == code
    assert order_by_client_id(client, "five-before") is None
    assert client.futures_position_information() == []


def test_error_5xx_after_the_order_exists(client, sim):
    fault(sim, "error_5xx_after")
    with pytest.raises(BinanceAPIException) as info:
        client.futures_create_order(**ORDER, newClientOrderId="five-after")
    assert info.value.status_code == 503
    order = order_by_client_id(client, "five-after")
    assert order is not None and order["status"] == "FILLED"
    assert len(client.futures_position_information()) == 1


def test_drop_before_the_order_is_placed(client, sim):
    fault(sim, "drop_before")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.futures_create_order(**ORDER, newClientOrderId="drop-before")
    assert order_by_client_id(client, "drop-before") is None
    assert sim.control("state")["orders"]["futures"] == 0


def test_drop_after_the_order_is_placed(client, sim):
    fault(sim, "drop_after")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.futures_create_order(**ORDER, newClientOrderId="drop-after")
    order = order_by_client_id(client, "drop-after")
    assert order is not None and order["status"] == "FILLED" and order["clientOrderId"] == "drop-after"


def test_drops_are_clean_for_both_clients(client, sim, caplog):
    caplog.set_level(logging.DEBUG)
    for kind in ("drop_before", "drop_after"):
        fault(sim, kind, "/fapi/v1/leverage")
        with pytest.raises(requests.exceptions.ConnectionError):
            client.futures_change_leverage(**BTC, leverage=10)

    async def async_drops() -> None:
        ac = point_at(AsyncClient(sim.api_key, sim.api_secret), sim.base_url)
        try:
            for kind in ("drop_before", "drop_after"):
                fault(sim, kind, "/fapi/v1/leverage")
                with pytest.raises(aiohttp.ClientConnectionError):
                    await asyncio.wait_for(ac.futures_change_leverage(**BTC, leverage=11), timeout=10)
            assert (await ac.futures_ping()) == {}
        finally:
            await ac.close_connection()

    asyncio.run(async_drops())
    # Both connections were really closed, the server keeps serving, and nothing was logged as a problem.
    assert client.futures_ping() == {}
    log = [e for e in sim.control("requests") if e["path"] == "/fapi/v1/leverage"][-4:]
    assert [e.get("fault") for e in log] == ["drop_before", "drop_after"] * 2
    assert problems(caplog) == []


def test_non_json_body_on_a_2xx(client, sim):
    fault(sim, "non_json", "/fapi/v1/premiumIndex")
    with pytest.raises(BinanceRequestException) as info:
        client.futures_mark_price(**BTC)
    assert "Invalid Response" in info.value.message
    assert client.futures_mark_price(**BTC)["symbol"] == "BTCUSDT"


async def test_non_json_body_with_the_async_client(async_client, sim):
    # AsyncClient lets aiohttp decode the JSON, and aiohttp refuses a text/html body before python-binance
    # can turn it into BinanceRequestException: callers of the async client must catch both.
    fault(sim, "non_json", "/fapi/v1/premiumIndex")
    with pytest.raises((BinanceRequestException, aiohttp.ContentTypeError)):
        await async_client.futures_mark_price(**BTC)
    assert (await async_client.futures_mark_price(**BTC))["symbol"] == "BTCUSDT"


def test_faults_are_consumed_after_count(client, sim):
    sim.control("faults", {"kind": "error_5xx", "path": "/fapi/v1/time", "count": 2})
    for _ in range(2):
        with pytest.raises(BinanceAPIException):
            client.futures_time()
    assert client.futures_time()["serverTime"] > 0
    assert [f["count"] for f in sim.control("state")["faults"]] == [0]


def test_unlimited_fault_until_cleared_and_filters(client, sim):
    sim.control("faults", {"kind": "error_5xx", "path": "/fapi/v1/order", "method": "POST", "count": -1})
    for _ in range(3):
        with pytest.raises(BinanceAPIException):
            client.futures_create_order(**ORDER)
    with pytest.raises(BinanceAPIException) as info:
        client.futures_get_order(**BTC, orderId=1)  # GET on the same path is not faulted
    assert info.value.code == -2013
    assert client.get_symbol_ticker(**BTC)["symbol"] == "BTCUSDT"  # nor is another path
    sim.control("faults", method="DELETE")
    assert client.futures_create_order(**ORDER)["status"] == "NEW"
    assert sim.control("state")["faults"] == []


def test_reset_clears_faults(client, sim):
    sim.control("faults", {"kind": "error_5xx", "path": "/", "count": -1})
    with pytest.raises(BinanceAPIException):
        client.ping()
    sim.control("reset", {})
    assert client.ping() == {}


def test_fault_control_validates_its_input(sim):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(sim.base_url + "/_sim/faults", data=json.dumps({"kind": "explode"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)  # noqa: S310 - loopback
    assert info.value.code == 400 and "kind must be one of" in json.loads(info.value.read())["error"]


def test_controls_are_absent_without_controls_true():
    rs = start_in_thread(SimConfig(controls=False, tick_seconds=0))
    try:
        for method, path, body in (("GET", "/_sim/state", None), ("GET", "/_sim/requests", None),
                                   ("POST", "/_sim/faults", {"kind": "drop_before", "path": "/"}),
                                   ("POST", "/_sim/price", {"symbol": "BTCUSDT", "price": "1"})):
            resp = requests.request(method, rs.base_url + path, json=body, timeout=10)
            assert resp.status_code == 404, (method, path)
            assert "error" not in resp.json() and resp.json()["code"] < 0  # a Binance-style error, not a control
        c = point_at(Client(rs.api_key, rs.api_secret, ping=False), rs.base_url)
        assert c.futures_ping() == {}  # no fault was injected
        assert c.get_symbol_ticker(**BTC)["price"] != "1.00000000"  # and no price was set
        c.close_connection()
    finally:
        rs.stop()
    assert not rs.thread.is_alive()
