"""A live paper feed whose upstream is a second ``binance-mcp simulator`` on 127.0.0.1: the paper server shows the
upstream's symbols and prices, fills market orders by walking the upstream's book, fills resting orders when the
upstream's market trades through them, and answers a clear error, never a hang, when the upstream is down."""

from __future__ import annotations

import asyncio
import socket
import time
from decimal import Decimal

import pytest

from tests.helpers import D
from tests.paper.conftest import Upstream, live_env, paper_server, start_upstream

pytestmark = pytest.mark.asyncio(loop_scope="module")

BTC = "BTCUSDT"


def upstream_requests(up: Upstream, path: str) -> list[dict]:
    return [e for e in up.requests() if e["path"] == path]


def walk(levels: list[list[str]], qty: Decimal) -> list[tuple[Decimal, Decimal]]:
    fills, left = [], qty
    for price, avail in levels:
        take = min(D(avail), left)
        fills.append((D(price), take))
        left -= take
        if not left:
            return fills
    raise AssertionError("the book is too thin for this test")


async def wait_for(predicate, seconds: float = 8.0):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.25)


async def test_the_paper_exchange_shows_the_upstreams_symbols_and_prices(upstream: Upstream, tmp_path):
    upstream.set_price(BTC, "91234.56")
    upstream.set_price("ETHUSDT", "2345.67")
    upstream.set_price(BTC, market="futures", price="91300.1", mark="91290.5")
    async with paper_server(live_env(tmp_path, upstream.base)) as (paper, status):
        assert status["feed"] == f"live {upstream.host}"
        info = await paper.call("binance_exchange_info", {"market": "spot"})
        theirs = upstream.public("/api/v3/exchangeInfo")["symbols"]
        assert [s["symbol"] for s in info["symbols"]] == [s["symbol"] for s in theirs]
        assert upstream_requests(upstream, "/api/v3/exchangeInfo")  # read from the upstream, not made up
        prices = {p["symbol"]: p["price"] for p in (await paper.call("binance_spot_price", {}))["prices"]}
        assert D(prices[BTC]) == D("91234.56") and D(prices["ETHUSDT"]) == D("2345.67")
        fut = (await paper.call("binance_futures_price", {"symbol": BTC}))["prices"][0]
        assert D(fut["lastPrice"]) == D("91300.1") and D(fut["markPrice"]) == D("91290.5")
        # The paper exchange's own public endpoints answer what the upstream answers.
        assert paper.public("/api/v3/depth", symbol=BTC, limit=5)["bids"] == \
            upstream.public("/api/v3/depth", symbol=BTC, limit=5)["bids"]
        # Cached: a second look within the TTL costs the upstream nothing.
        seen = len(upstream_requests(upstream, "/api/v3/ticker/price"))
        await paper.call("binance_spot_price", {})
        assert len(upstream_requests(upstream, "/api/v3/ticker/price")) == seen


async def test_a_market_order_walks_the_upstreams_book(upstream: Upstream, tmp_path):
    upstream.set_price(BTC, "88000")
    async with paper_server(live_env(tmp_path, upstream.base, BINANCE_MCP_PAPER_BALANCES="USDT=100000")) as (paper, _):
        await asyncio.sleep(1.1)  # whatever the paper exchange cached of the old book is out of date now
        asks = upstream.public("/api/v3/depth", symbol=BTC, limit=100)["asks"]
        qty = D(asks[0][1]) + D(asks[1][1]) + D(asks[2][1]) / 2  # three levels: its own size moves its price
        expected = walk(asks, qty)
        o = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                         "quantity": str(qty)})
        assert o["status"] == "FILLED" and D(o["executedQty"]) == qty
        cost = sum((p * q for p, q in expected), Decimal(0))
        assert D(o["cummulativeQuoteQty"]) == cost
        assert cost / qty > D(asks[0][0])  # the average is worse than the best ask
        # On the paper exchange itself: one trade per level walked, at the upstream's prices.
        trades = paper.signed("/api/v3/myTrades", symbol=BTC)
        assert [(D(t["price"]), D(t["qty"])) for t in trades] == expected
        assert paper.spot_balance("USDT") == (D(100000) - cost, D(0))
        # Futures too: the upstream's futures book, walked.
        fasks = upstream.public("/fapi/v1/depth", symbol=BTC, limit=100)["asks"]
        fqty = (D(fasks[0][1]) + D("0.001")).quantize(D("0.001"))
        f = await paper.call("binance_futures_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                            "quantity": str(fqty)})
        fills = walk(fasks, fqty)
        assert f["status"] == "FILLED" and len(fills) == 2
        ftrades = paper.signed("/fapi/v1/userTrades", symbol=BTC)
        assert [(D(t["price"]), D(t["qty"])) for t in ftrades] == fills


async def test_resting_orders_fill_when_the_upstream_trades_through_them(upstream: Upstream, tmp_path):
    upstream.set_price(BTC, "90000")
    async with paper_server(live_env(tmp_path, upstream.base)) as (paper, _):
        o = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                         "quantity": "0.01", "price": "89000"})
        stop = await paper.call("binance_spot_place_order", {"symbol": "ETHUSDT", "side": "BUY",
                                                            "type": "STOP_LOSS_LIMIT", "quantity": "0.01",
                                                            "price": "3600", "stopPrice": "3550"})
        assert o["status"] == "NEW" and stop["status"] == "NEW"
        await asyncio.sleep(2.5)  # a poll or two with the market above the limit: it keeps resting
        assert paper.signed("/api/v3/order", symbol=BTC, orderId=o["orderId"])["status"] == "NEW"
        upstream.set_price(BTC, "88900")  # the upstream's market trades through 89000
        upstream.set_price("ETHUSDT", "3560")  # and through the stop: its limit 3600 takes the book
        # No call to the paper server: its poller sees the upstream move.
        filled = await wait_for(lambda: paper.signed("/api/v3/order", symbol=BTC,
                                                     orderId=o["orderId"])["status"] == "FILLED")
        assert filled
        row = paper.signed("/api/v3/order", symbol=BTC, orderId=o["orderId"])
        assert (D(row["executedQty"]), D(row["cummulativeQuoteQty"])) == (D("0.01"), D("890"))
        eth = await wait_for(lambda: paper.signed("/api/v3/order", symbol="ETHUSDT",
                                                  orderId=stop["orderId"])["status"] == "FILLED")
        assert eth
        assert paper.spot_balance("BTC")[0] == D("0.01") * (1 - D("0.001"))


async def test_an_unreachable_upstream_is_a_clear_error_within_the_timeout_and_account_reads_still_work(tmp_path):
    up = start_upstream()
    try:
        async with paper_server(live_env(tmp_path, up.base)) as (paper, _):
            o = await paper.call("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "LIMIT",
                                                             "quantity": "0.01", "price": "90000"})
            up.stop()  # the upstream goes away: connections are refused
            await asyncio.sleep(1.1)  # past the cache: an order may use a book at most 1 s old
            for tool, args in (("binance_spot_price", {"symbol": "ETHUSDT"}),
                               ("binance_spot_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                             "quantity": "0.001"}),
                               ("binance_futures_place_order", {"symbol": BTC, "side": "BUY", "type": "MARKET",
                                                                "quantity": "0.001"})):
                started = time.monotonic()
                text = await paper.error(tool, args)
                assert time.monotonic() - started < 5, (tool, text)
                assert "live market data" in text and up.host in text and "unreachable" in text, text
                assert "binance-mcp paper reset --feed synthetic" in text, text
            # The account itself: balances, open orders and the order's cancel work without market data.
            balances = {b["asset"]: b for b in (await paper.call("binance_spot_balances", {}))["balances"]}
            assert D(balances["USDT"]["locked"]) == D("900")
            opened = await paper.call("binance_spot_open_orders", {"symbol": BTC})
            assert [x["orderId"] for x in opened["orders"]] == [o["orderId"]]
            await paper.call("binance_spot_cancel_order", {"symbol": BTC, "orderId": o["orderId"]})
            assert paper.spot_balance("USDT") == (D(10000), D(0))
            assert paper.signed("/api/v3/allOrders", symbol=BTC)[-1]["status"] == "CANCELED"
    finally:
        up.stop()


async def test_an_upstream_that_accepts_and_never_answers_is_an_error_not_a_hang(upstream: Upstream, tmp_path):
    """A listening socket that never answers: the upstream's total timeout ends the wait, inside the client's."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with paper_server(live_env(tmp_path, url)) as (paper, _):
            started = time.monotonic()
            text = await paper.error("binance_spot_price", {"symbol": BTC})
            took = time.monotonic() - started
            assert took < 9, took  # the paper exchange's 6 s, not the client's 10 s timeout, nor a hang
            assert "unreachable" in text and "no answer within 6 s" in text, text
    finally:
        silent.close()
