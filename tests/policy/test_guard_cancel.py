"""The guard in process, with fake exchange facts: cancellation releases what a call reserved and leaves a final
audit record; errors while deciding deny with POLICY_ERROR and are logged once (a traceback only for bugs)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from decimal import Decimal

import pytest
from pydantic import BaseModel

from binance_mcp.catalog import BY_NAME
from binance_mcp.policy import engine
from binance_mcp.policy.facts import FactError
from binance_mcp.policy.guard import PolicyDenied, PolicyGuard
from binance_mcp.policy.loader import parse_text
from binance_mcp.tools.spot import SpotOrderArgs

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {daily_notional_usd: 10000}
"""
ORDER = dict(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=Decimal("0.01"))  # 970.0001 USD at the ask


class Prices:
    """A PriceSource with fixed prices; ``fail`` makes the book raise it; ``found`` answers order lookups."""

    def __init__(self) -> None:
        self.fail: Exception | None = None
        self.found: bool | None = False
        self.lookups: list[str] = []

    async def spot_book_top(self, symbol):
        if self.fail is not None:
            raise self.fail
        return Decimal("96999.99"), Decimal("97000.01")

    async def spot_price(self, symbol):
        return Decimal("97000")

    async def quote_asset(self, market, symbol):
        return "USDT"

    async def find_order(self, market, symbol, cid, conditional):
        self.lookups.append(cid)
        return self.found


class Placed(BaseModel):  # a placement's result, as the guard reads it (Binance's name)
    orderId: int = 1


def never(_seconds: float):
    return asyncio.Event().wait()  # the test settles unknown orders itself (guard.sweep)


@pytest.fixture
def prices() -> Prices:
    return Prices()


@pytest.fixture
def guard(tmp_path, prices):
    g = PolicyGuard(parse_text(POLICY, "p.yaml"), tmp_path, prices, sleep=never, account="acct")
    yield g
    g.close()


def run(guard: PolicyGuard, runner) -> asyncio.Task:
    wrapped = guard.wrap(BY_NAME["binance_spot_place_order"], None, runner)
    return asyncio.ensure_future(wrapped(SpotOrderArgs(**ORDER)))


async def placed(args):
    return Placed()


async def cancel_mid_send(guard: PolicyGuard) -> None:
    """Start an order whose request never comes back, and cancel the call while it is being sent."""
    started = asyncio.Event()

    async def hangs(args):
        started.set()
        await asyncio.Event().wait()

    task = run(guard, hangs)
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def used(guard: PolicyGuard) -> Decimal:
    return guard.state.used(["tool:binance_spot_place_order"])["tool:binance_spot_place_order"]


def last_record(guard: PolicyGuard) -> dict:
    lines = (guard.audit.path).read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


async def test_cancelled_while_waiting_for_the_state_database_reserves_nothing(guard, tmp_path):
    guard.state.check_writable()  # the database exists
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: the decision waits for it
    sent = []

    async def runner(args):
        sent.append(args)
        return Placed()

    task = run(guard, runner)
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    asyncio.get_running_loop().call_later(0.2, other.execute, "ROLLBACK")  # the other process lets go
    with pytest.raises(asyncio.CancelledError):
        await task
    other.close()
    assert sent == []
    assert used(guard) == 0 and guard.state.in_flight("acct") == []
    record = last_record(guard)
    assert record["outcome"]["status"] == "cancelled" and record["outcome"]["phase"] == "deciding"
    assert record["decision"]["code"] == "CANCELLED"


async def test_cancelled_while_sending_keeps_the_reservation_until_the_order_is_known_absent(guard, prices):
    await cancel_mid_send(guard)
    record = last_record(guard)
    cid = record["outcome"]["client_order_id"]
    assert record["outcome"]["status"] == "cancelled" and record["outcome"]["may_have_been_sent"] is True
    assert cid.startswith("bmcp")
    # It may have reached the exchange: it keeps counting, toward the daily sum and as in flight.
    assert used(guard) == Decimal("0.01") * Decimal("97000.01")
    (pending,) = guard.state.in_flight("acct")
    assert pending.client_order_id == cid
    # Once the exchange says there is no such order, both are given back; a found order would keep the sum.
    assert await guard.sweep(only=pending.call_id) == 1
    assert prices.lookups == [cid]
    assert used(guard) == 0 and guard.state.in_flight("acct") == []


async def test_an_order_found_by_the_sweep_keeps_its_daily_sum(guard, prices):
    await cancel_mid_send(guard)
    prices.found = True
    (pending,) = guard.state.in_flight("acct")
    assert await guard.sweep(only=pending.call_id) == 1
    assert used(guard) == Decimal("0.01") * Decimal("97000.01")
    assert guard.state.in_flight("acct") == []


async def test_an_unanswered_lookup_leaves_the_order_in_flight(guard, prices):
    await cancel_mid_send(guard)
    prices.found = None  # the exchange cannot be asked
    (pending,) = guard.state.in_flight("acct")
    assert await guard.sweep(only=pending.call_id) == 0
    assert len(guard.state.in_flight("acct")) == 1  # never released on time alone


async def test_an_answered_order_is_no_longer_in_flight(guard):
    assert isinstance(await run(guard, placed), Placed)
    assert guard.state.in_flight("acct") == []
    assert used(guard) == Decimal("0.01") * Decimal("97000.01")


async def test_a_bug_while_deciding_denies_and_logs_one_traceback(guard, prices, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(engine, "decide", broken)
    with caplog.at_level(logging.WARNING, logger="binance_mcp"):
        with pytest.raises(PolicyDenied) as err:
            await run(guard, placed)
    assert err.value.decision.code == "POLICY_ERROR"
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR and errors[0].exc_info is not None


async def _denied_by_fact_failure(guard, prices, caplog, failure) -> list[logging.LogRecord]:
    prices.fail = failure
    with caplog.at_level(logging.WARNING, logger="binance_mcp"):
        with pytest.raises(PolicyDenied) as err:
            await run(guard, placed)
    assert err.value.decision.code == "POLICY_ERROR"
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_expected_fact_failure_logs_one_line_without_traceback(guard, prices, caplog):
    (logged,) = await _denied_by_fact_failure(guard, prices, caplog, FactError("the order book is empty"))
    assert logged.levelno == logging.WARNING and logged.exc_info is None


async def test_an_unexpected_fact_failure_logs_one_traceback(guard, prices, caplog):
    (logged,) = await _denied_by_fact_failure(guard, prices, caplog, RuntimeError("socket closed"))
    assert logged.levelno == logging.ERROR and logged.exc_info is not None
