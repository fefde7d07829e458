"""Concurrent order calls against a daily cap and a rate limit, over stdio: one session with 50 calls in flight,
and two server processes sharing one state directory. What counts is what the simulators hold."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest
import pytest_asyncio

from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, D, Paper, limit_buy, serve, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER = "binance_spot_place_order"
DAILY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {{daily_notional_usd: {cap}}}
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("guard-concurrency")
    async with serve(d / "state", write_policy(d / "policy.yaml", "version: 1\ndefault: allow\n")) as p:
        yield p


@pytest.fixture
def paper(server: Paper) -> Paper:
    server.reset()
    return server


async def filled_quote(paper: Paper, order_ids: list[int]) -> Decimal:
    """The quote amount the exchange filled for these orders (its own order history)."""
    history = await paper.ok("binance_spot_order_history", {"symbol": "BTCUSDT"})
    by_id = {o["orderId"]: o for o in history["orders"]}
    assert set(order_ids) <= set(by_id), (order_ids, list(by_id))
    return sum((D(by_id[i]["cummulativeQuoteQty"]) for i in order_ids), Decimal(0))


async def test_fifty_concurrent_market_orders_never_pass_the_daily_cap(paper: Paper):
    write_policy(paper.policy, DAILY.format(cap=100000))
    used = await paper.daily_used()
    write_policy(paper.policy, DAILY.format(cap=used + 1000))
    seq = paper.state()["last_seq"]
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}  # about 97 USD each
    results = await asyncio.gather(*(paper.call(ORDER, market) for _ in range(50)))
    allowed = [r.structured_content for r in results if not r.is_error]
    refused = [r.content[0].text for r in results if r.is_error]
    assert {t.split(":")[0] for t in refused} == {"DAILY_NOTIONAL_OVER_LIMIT"}, refused[:3]
    assert len(allowed) == 10  # 10 x 97.00001 fits under 1000, 11 does not

    # The exchange holds exactly the allowed orders, and what they cost stays under the cap.
    sent = paper.spot_orders_since(seq)
    assert len(sent) == len(allowed)
    spent = await filled_quote(paper, [o["orderId"] for o in allowed])
    assert 0 < spent <= 1000
    records = [r for r in paper.calls(ORDER) if r["decision"]["code"] == "ALLOWED"][-len(allowed):]
    counted = sum((D(r["decision"]["facts"]["notional_usd"]) for r in records), Decimal(0))
    assert counted == await paper.daily_used() - used
    assert counted <= 1000


async def test_concurrent_calls_never_pass_a_rate_limit(paper: Paper):
    write_policy(paper.policy, """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order:
            rate_limit: {max: 5, window: 3600}
            limits: {max_notional_usd: 1000}
        """)
    seq = paper.state()["last_seq"]
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}
    results = await asyncio.gather(*(paper.call(ORDER, market) for _ in range(20)))
    refused = [r.content[0].text for r in results if r.is_error]
    assert {t.split(":")[0] for t in refused} == {"RATE_LIMITED"}, refused[:3]
    assert len(results) - len(refused) == 5
    assert len(paper.spot_orders_since(seq)) == 5


async def test_two_server_processes_sharing_a_state_dir_share_the_cap(tmp_path, store_backend):
    state = tmp_path / "state"
    policy = write_policy(tmp_path / "policy.yaml", DAILY.format(cap=1000))
    async with AsyncExitStack() as stack:
        a, b = await asyncio.gather(stack.enter_async_context(serve(state, policy)),
                                    stack.enter_async_context(serve(state, policy)))
        assert a.host != b.host  # two processes, two paper exchanges, one state database
        seqs = {a.host: a.state()["last_seq"], b.host: b.state()["last_seq"]}
        calls = [p.call(ORDER, limit_buy()) for _ in range(25) for p in (a, b)]  # 97.00001 USD each, interleaved
        results = await asyncio.gather(*calls)
        refused = [r.content[0].text for r in results if r.is_error]
        assert {t.split(":")[0] for t in refused} == {"DAILY_NOTIONAL_OVER_LIMIT"}, refused[:3]
        placed = {p.host: len(p.spot_orders_since(seqs[p.host])) for p in (a, b)}
        total = sum(placed.values())
        assert total == len(results) - len(refused) == 10  # every order that fitted was allowed, no more
        assert total * LIMIT_NOTIONAL <= 1000
        # Both servers read the same sum.
        assert await a.daily_used() == await b.daily_used() == LIMIT_NOTIONAL * total
