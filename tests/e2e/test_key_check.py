"""The key check end to end: ``binance-mcp serve`` (BINANCE_MCP_MODE=testnet, pointed at a simulator with
BINANCE_MCP_BASE_URL) over stdio, against a simulator whose ``GET /sapi/v1/account/apiRestrictions`` answers what
the test sets. What reached the exchange is read from the simulator's own request log and order book."""

from __future__ import annotations

import json

import pytest

from binance_mcp.exchange.client import Exchange
from binance_mcp.settings import load_settings
from tests.hardening.helpers import RawStdio, raw_text, server_env
from tests.helpers import simulator, write_policy

ALLOW = "version: 1\ndefault: allow\n"
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "90000"}
SPOT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
SAPI = "/sapi/v1/account/apiRestrictions"


def _serve(sim, tmp_path, **extra: str) -> RawStdio:
    env = server_env(sim, tmp_path / "state", write_policy(tmp_path / "policy.yaml", ALLOW),
                     BINANCE_MCP_MODE="testnet", BINANCE_MCP_TIMEOUT="10", **extra)
    server = RawStdio(env, tmp_path / "stderr.txt")
    server.initialize()
    return server


def _status(server: RawStdio) -> dict:
    result = server.call("binance_policy_status", {})
    assert not result.get("isError"), raw_text(result)
    return result["structuredContent"]


def _paths(sim, since: int) -> list[str]:
    return [e["path"] for e in sim.control(f"requests?since={since}")]


@pytest.mark.parametrize("restrictions, permission, switch", [
    ({"enableWithdrawals": True}, "enableWithdrawals", "Enable Withdrawals"),
    ({"permitsUniversalTransfer": True}, "permitsUniversalTransfer", "Permits Universal Transfer"),
    ({"enableInternalTransfer": True}, "enableInternalTransfer", "Permits Internal Transfer"),
])
def test_a_key_that_can_move_funds_locks_the_server_and_nothing_reaches_the_exchange(
        tmp_path, restrictions, permission, switch):
    with simulator(api_restrictions=restrictions) as sim:
        server = _serve(sim, tmp_path)
        try:
            texts = []
            for tool, args in (("binance_futures_place_order", ORDER), ("binance_spot_place_order", SPOT),
                               ("binance_spot_price", {"symbol": "BTCUSDT"}), ("binance_futures_positions", {})):
                result = server.call(tool, args)
                assert result.get("isError") is True, (tool, result)
                texts.append(raw_text(result))
            for text in texts:
                assert text.startswith("POLICY_ERROR: "), text
                assert permission in text and switch in text and "API management page" in text, text
            for other in {"enableWithdrawals", "permitsUniversalTransfer", "enableInternalTransfer"} - {permission}:
                assert other not in texts[0]  # only the permission that is on is named
            status = _status(server)
            key = status["safety"]["key_check"]
            assert key["status"] == "locked" and permission in key["error"]
            assert key["permissions"][permission] is True
        finally:
            assert server.close() == 0
        # The exchange saw the time sync and the key check, nothing else: no order, no price read.
        log = sim.control("requests")
        assert {e["path"] for e in log} <= {"/api/v3/time", SAPI}, [e["path"] for e in log]
        assert [e["path"] for e in log].count(SAPI) == 1  # checked once (again at most once a minute)
        state = sim.control("state")
        assert state["orders"] == {"spot": 0, "futures": 0, "algo": 0}
        assert state["order_requests"] == {"spot": 0, "futures": 0}
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    # The first call: the policy allowed it, the adapter's check refused it before anything was sent.
    first = [r for r in audit if r.get("tool") == "binance_futures_place_order"][-1]
    assert first["outcome"]["status"] == "error" and first["outcome"]["error_code"] == "POLICY_ERROR"
    assert permission in first["outcome"]["error"]
    # Every later call: refused before the policy saw it, with the lock's text.
    later = [r for r in audit if r.get("tool") in ("binance_spot_place_order", "binance_spot_price")]
    assert len(later) == 2 and all(r["decision"]["code"] == "POLICY_ERROR" and permission in r["decision"]["reason"]
                                   and r["outcome"]["status"] == "not_run" for r in later)
    assert "locked" in (tmp_path / "stderr.txt").read_text()


def test_a_key_without_ip_restriction_works_with_a_warning(tmp_path):
    with simulator(api_restrictions={"ipRestrict": False}) as sim:
        sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
        server = _serve(sim, tmp_path)
        try:
            placed = server.call("binance_futures_place_order", ORDER)
            assert not placed.get("isError"), raw_text(placed)
            server.call("binance_spot_price", {"symbol": "BTCUSDT"})
            key = _status(server)["safety"]["key_check"]
        finally:
            assert server.close() == 0
        assert key["status"] == "passed" and key["permissions"]["ipRestrict"] is False
        assert any("ipRestrict is false" in w for w in key["warnings"]), key
        assert sim.control("state")["orders"]["futures"] == 1  # the order reached the exchange
        assert [e["path"] for e in sim.control("requests")].count(SAPI) == 1  # cached for the process
    stderr = (tmp_path / "stderr.txt").read_text()
    assert stderr.count("no IP restriction") == 1, stderr  # said once


def test_an_exchange_without_the_endpoint_goes_on_and_says_so_once(tmp_path):
    """Binance's testnets answer 404 for /sapi: the server says so (log and status) and trades."""
    with simulator(api_restrictions=None) as sim:
        sim.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
        server = _serve(sim, tmp_path)
        try:
            for _ in range(2):
                result = server.call("binance_futures_place_order", ORDER)
                assert not result.get("isError"), raw_text(result)
            key = _status(server)["safety"]["key_check"]
        finally:
            assert server.close() == 0
        assert key["status"] == "absent" and "404" in key["warnings"][0]
        assert sim.control("state")["orders"]["futures"] == 2
        assert [e["path"] for e in sim.control("requests")].count(SAPI) == 1  # asked once, not again
    assert (tmp_path / "stderr.txt").read_text().count("apiRestrictions") == 1


def test_a_safe_key_passes_and_paper_mode_has_no_check(tmp_path):
    with simulator() as sim:
        server = _serve(sim, tmp_path)
        try:
            assert not server.call("binance_spot_price", {"symbol": "BTCUSDT"}).get("isError")
            key = _status(server)["safety"]["key_check"]
        finally:
            assert server.close() == 0
        assert key["status"] == "passed" and "warnings" not in key
        paths = [e["path"] for e in sim.control("requests")]
        assert paths.index(SAPI) < paths.index("/api/v3/ticker/price")  # checked before anything else was read
    paper = Exchange(load_settings({}))
    assert paper.keycheck.needed is False and paper.keycheck.result.view() == {"status": "not_needed"}


@pytest.mark.parametrize("env, url", [
    ({"BINANCE_MCP_MODE": "live"}, "https://api.binance.com/sapi"),
    ({"BINANCE_MCP_MODE": "testnet"}, "https://testnet.binance.vision/sapi"),
    ({"BINANCE_MCP_BASE_URL": "http://127.0.0.1:9/"}, "http://127.0.0.1:9/sapi"),
])
def test_the_key_check_goes_to_the_mode_s_own_host(env, url):
    """python-binance's hard-coded wallet URL is never used: the check asks the exchange the server trades on."""
    exchange = Exchange(load_settings({"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s", **env}))
    assert exchange.sapi_url == url and exchange.keycheck.needed


async def test_a_locked_key_is_checked_again_at_most_once_a_minute_and_unlocks_when_fixed():
    """The adapter on a real simulator, its clock injected: removing the permission on Binance unlocks the server
    without a restart; a key that passed is checked again after an hour, and a lock is noticed then."""
    from binance_mcp.exchange import keycheck
    from binance_mcp.exchange.keycheck import KeyLocked
    from tests.fakeclock import FakeClock

    with simulator(api_restrictions={"enableWithdrawals": True}) as sim:
        clock = FakeClock()
        exchange = Exchange(load_settings({"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret,
                                           "BINANCE_MCP_BASE_URL": sim.base_url}), clock=clock)

        def checks() -> int:
            return [e["path"] for e in sim.control("requests")].count(SAPI)

        try:
            for _ in range(3):
                with pytest.raises(KeyLocked, match="enableWithdrawals"):
                    await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert checks() == 1  # within the minute: the lock is not asked again
            sim.sim.cfg.api_restrictions = {"enableWithdrawals": False}  # a human fixed the key on Binance
            clock.advance(keycheck.RECHECK_LOCKED_S)
            await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert checks() == 2 and exchange.keycheck.result.status == "passed"
            await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert checks() == 2  # a pass is cached
            sim.sim.cfg.api_restrictions = {"permitsUniversalTransfer": True}  # and later someone widened it
            clock.advance(keycheck.RECHECK_PASSED_S)
            with pytest.raises(KeyLocked, match="permitsUniversalTransfer"):
                await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert checks() == 3
            tickers = [e for e in sim.control("requests") if e["path"].endswith("/ticker/price")]
            assert len(tickers) == 2  # only the calls made while the key passed reached the exchange
        finally:
            await exchange.close()


async def test_a_first_check_that_cannot_complete_sends_nothing_and_is_tried_again():
    """Fail closed: no answer to the check means no call; the next call checks again."""
    from binance_mcp.errors import BinanceMcpError
    from binance_mcp.exchange.keycheck import KeyLocked

    with simulator() as sim:
        exchange = Exchange(load_settings({"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret,
                                           "BINANCE_MCP_BASE_URL": sim.base_url}))
        try:
            sim.control("faults", {"kind": "error_5xx", "path": SAPI, "count": 1})
            with pytest.raises(BinanceMcpError, match="Checking the API key's permissions") as info:
                await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert not isinstance(info.value, KeyLocked) and info.value.remedy == "retry_later"
            assert "could not complete" in exchange.keycheck.result.error
            assert [e["path"] for e in sim.control("requests") if e["path"] != "/api/v3/time"] == [SAPI]
            await exchange.call("futures_symbol_ticker", "Reading a price", signed=False, symbol="BTCUSDT")
            assert exchange.keycheck.result.status == "passed"
        finally:
            await exchange.close()
