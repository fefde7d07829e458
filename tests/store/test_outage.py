"""PostgreSQL away under a running server: trading calls are denied with POLICY_ERROR (nothing sent), read tools
keep answering with their rate limits counted in the process, the status says so, and once the database is back
the next call uses it again, without a restart. The session's own cluster is killed and restarted (SIGKILL: a
crash, with recovery at start), or made read-only."""

from __future__ import annotations

import time

import psycopg
import pytest

from binance_mcp.policy.state import StateStore
from tests.policy.test_guard_helpers import LIMIT_NOTIONAL, limit_buy, serve, write_policy

pytestmark = pytest.mark.asyncio

ORDER = "binance_spot_place_order"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_price:
    rate_limit: {max: 3, window: 3600}
  binance_spot_place_order:
    limits: {daily_notional_usd: 1000}
"""


@pytest.fixture
def pg_url(pg_server, monkeypatch) -> str:
    url = pg_server.new_schema()
    monkeypatch.setenv("BINANCE_MCP_STATE_URL", url)
    return url


def used(tmp_path, url: str):
    return StateStore(tmp_path / "state.db", time.time, url=url).used(
        ["tool:binance_spot_place_order"])


async def test_a_killed_database_denies_orders_keeps_reads_and_is_used_again_once_back(pg_server, pg_url, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", POLICY)
    async with serve(tmp_path / "state", policy) as paper:
        await paper.ok(ORDER, limit_buy())
        seq = paper.state()["last_seq"]
        pg_server.kill()
        try:
            text = await paper.denied(ORDER, limit_buy(), "POLICY_ERROR")
            assert "postgresql://postgres@127.0.0.1" in text and "state database" in text, text
            for _ in range(3):  # read tools answer; their rate limit counts here meanwhile
                await paper.ok("binance_spot_price", {"symbol": "BTCUSDT"})
            await paper.denied("binance_spot_price", {"symbol": "BTCUSDT"}, "RATE_LIMITED")
            status = await paper.status()
            assert "calls that trade are denied" in status["state_error"], status
            assert [r["used"] for r in status["rate_limits"]] == [3]
            assert paper.spot_orders_since(seq) == []  # nothing reached the exchange
        finally:
            pg_server.start()
        await paper.ok(ORDER, limit_buy())  # back: the same process reconnects
        assert "state_error" not in await paper.status()
    assert used(tmp_path, pg_url) == {"tool:binance_spot_place_order": 2 * LIMIT_NOTIONAL}


async def test_a_read_only_database_denies_orders_until_it_is_writable_again(pg_server, pg_url, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml", POLICY)
    admin = psycopg.connect(pg_server.admin_url, autocommit=True)
    async with serve(tmp_path / "state", policy) as paper:
        await paper.ok(ORDER, limit_buy())
        admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        admin.execute("SELECT pg_reload_conf()")
        try:
            time.sleep(0.3)  # the backends apply the reload at their next command
            text = await paper.denied(ORDER, limit_buy(), "POLICY_ERROR")
            assert "read-only transaction" in text, text
            await paper.ok("binance_spot_price", {"symbol": "BTCUSDT"})
        finally:
            admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
            admin.execute("SELECT pg_reload_conf()")
            admin.close()
        time.sleep(0.3)
        await paper.ok(ORDER, limit_buy())
    assert used(tmp_path, pg_url) == {"tool:binance_spot_place_order": 2 * LIMIT_NOTIONAL}
