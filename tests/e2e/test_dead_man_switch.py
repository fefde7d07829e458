"""The dead man's switch (policy ``account.dead_man_switch``).

End to end: ``binance-mcp serve`` over stdio trading a simulator (BINANCE_MCP_BASE_URL), the simulator's own
countdown state read through its controls; the server is closed cleanly (stdin) or SIGKILLed, and time moves on
the simulator's clock (``/_sim/clock`` ``advance_ms``), never by sleeping. Then the switch itself with a real
exchange adapter on a real simulator over HTTP, its pauses and clock injected: scans, renewals, disarming,
failures and their bounded log, a policy that turns it off. And paper mode, whose embedded simulator implements
the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import pytest
from binance import Client

from binance_mcp.exchange.client import Exchange
from binance_mcp.policy import deadman
from binance_mcp.policy.deadman import DeadManSwitch
from binance_mcp.policy.loader import parse_text
from binance_mcp.settings import load_settings
from tests.fakeclock import FakeClock
from tests.hardening.helpers import RawStdio, raw_text, server_env
from tests.helpers import paper_env, point_at, simulator, stdio_client, write_policy

POLICY = "version: 1\ndefault: allow\naccount:\n  dead_man_switch: {seconds: 30}\n"
LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "90000"}


@pytest.fixture(scope="module")
def account():
    with simulator() as sim:
        yield sim


@pytest.fixture
def sim(account):
    account.control("reset", {})
    account.control("price", {"symbol": "BTCUSDT", "market": "futures", "price": "95000", "mark": "95000"})
    account.control("price", {"symbol": "ETHUSDT", "market": "futures", "price": "3000", "mark": "3000"})
    return account


@pytest.fixture
def human(sim):
    """A human's own client on the same account (the Binance app, say)."""
    c = point_at(Client(sim.api_key, sim.api_secret, ping=False), sim.base_url)
    yield c
    c.close_connection()


def countdowns(sim) -> dict:
    return sim.control("state")["countdowns"]


def wait_armed(sim, symbol: str, timeout: float = 20) -> dict:
    """The symbol's countdown on the exchange, once the server has armed it (right after the order)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        armed = countdowns(sim)["armed"]
        if symbol in armed:
            return armed[symbol]
        time.sleep(0.05)
    raise AssertionError(f"{symbol} was not armed: {countdowns(sim)}")


def open_futures(sim) -> list[str]:
    f = sim.sim.futures
    return sorted([f"{o.symbol}:{o.order_id}" for o in f.open_orders()] + [f"{a.symbol}:algo{a.algo_id}"
                                                                          for a in f.open_algo()])


def _serve(sim, tmp_path, policy: str = POLICY) -> RawStdio:
    env = server_env(sim, tmp_path / "state", write_policy(tmp_path / "policy.yaml", policy),
                     BINANCE_MCP_TIMEOUT="10")
    server = RawStdio(env, tmp_path / "stderr.txt")
    server.initialize()
    return server


@pytest.mark.parametrize("stop", ["stdin", "sigterm"])
def test_it_arms_after_an_order_and_a_clean_shutdown_disarms_it(sim, human, tmp_path, stop):
    """Clean: the client closes stdin, or SIGTERM (how clients and service managers stop a server)."""
    server = _serve(sim, tmp_path)
    try:
        placed = server.call("binance_futures_place_order", LIMIT)
        assert not placed.get("isError"), raw_text(placed)
        armed = wait_armed(sim, "BTCUSDT")
        assert armed["countdownTime"] == 30000  # seconds x 1000, as Binance takes it
        status = server.call("binance_policy_status", {})["structuredContent"]
        dms = status["safety"]["dead_man_switch"]
        assert dms["seconds"] == 30 and dms["armed"] == ["BTCUSDT"] and "a human placed" in dms["warning"]
        assert "failures" not in dms
        if stop == "sigterm":
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(timeout=30) == -signal.SIGTERM  # it still dies of the signal, disarmed first
    finally:
        code = server.close()  # stdin closed: the client quit
    assert code == (0 if stop == "stdin" else -signal.SIGTERM)
    assert countdowns(sim)["armed"] == {}  # disarmed (countdownTime=0) before the process ended
    sim.control("clock", {"advance_ms": 3_600_000})
    assert countdowns(sim)["fired"] == []
    assert len(open_futures(sim)) == 1  # quitting the client cancelled nothing
    posts = [e for e in sim.control("requests") if e["path"] == "/fapi/v1/countdownCancelAll"]
    assert [e["params"]["countdownTime"] for e in posts][-1] == "0"


def test_a_killed_server_s_orders_are_cancelled_when_the_countdown_runs_out(sim, human, tmp_path):
    server = _serve(sim, tmp_path)
    try:
        assert not server.call("binance_futures_place_order", LIMIT).get("isError")
        # A human's conditional order on the same symbol: Binance's countdown is per symbol, it goes too.
        human.futures_create_order(symbol="BTCUSDT", side="BUY", type="STOP_MARKET", stopPrice="99000",
                                   quantity="0.002")
        # and a human's order on a symbol the server never traded stays (not armed yet: no scan within 60 s)
        human.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                   price="2900")
        wait_armed(sim, "BTCUSDT")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
    finally:
        server.close()
    assert "BTCUSDT" in countdowns(sim)["armed"]  # nobody disarmed it
    assert len(open_futures(sim)) == 3
    sim.control("clock", {"advance_ms": 25_000})
    assert len(open_futures(sim)) == 3  # not yet
    sim.control("clock", {"advance_ms": 6_000})  # 31 s after the last renewal
    (fired,) = countdowns(sim)["fired"]
    assert fired["symbol"] == "BTCUSDT" and len(fired["orderIds"]) == 1 and len(fired["algoIds"]) == 1
    assert [o.split(":")[0] for o in open_futures(sim)] == ["ETHUSDT"]
    sim.control("clock", {"skew_ms": 0})
    assert human.futures_get_open_orders(symbol="BTCUSDT") == []  # what the exchange answers any client


async def test_paper_mode_arms_on_the_embedded_simulator(tmp_path):
    env = paper_env(tmp_path / "state", write_policy(tmp_path / "policy.yaml", POLICY))
    async with stdio_client(env, timeout=60) as client:
        host = (await client.call_tool("binance_account_status", {})).structured_content["host"]
        from tests.helpers import PaperSimulator

        paper = PaperSimulator(host)
        paper.set_price("BTCUSDT", "95000", market="futures", mark="95000")
        r = await client.call_tool("binance_futures_place_order", LIMIT, raise_on_error=False)
        assert not r.is_error, r.content[0].text
        deadline = time.monotonic() + 20
        while "BTCUSDT" not in paper.state()["countdowns"]["armed"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert paper.state()["countdowns"]["armed"]["BTCUSDT"]["countdownTime"] == 30000


# -- the switch itself: a real adapter on a real simulator, pauses and clock injected ---------------------------
def _switch(sim, policy_text: list[str], loop: FakeClock) -> tuple[DeadManSwitch, Exchange]:
    settings = load_settings({"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret,
                              "BINANCE_MCP_BASE_URL": sim.base_url, "BINANCE_MCP_TIMEOUT": "5"})
    exchange = Exchange(settings)

    async def policy():
        return parse_text(policy_text[0], "p.yaml")

    return DeadManSwitch(exchange, policy, clock=loop, wall=loop, sleep=loop.sleep), exchange


async def test_scan_arms_symbols_with_orders_placed_elsewhere_renews_and_disarms_when_none_are_left(sim, human):
    loop = FakeClock()
    policy = [POLICY]
    switch, exchange = _switch(sim, policy, loop)
    try:
        human.futures_create_order(symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                                   price="2900")
        await switch.tick()
        assert countdowns(sim)["calls"] == 0  # the server has made no exchange call yet: nothing is sent
        await exchange.call("futures_time", "Reading the time", signed=False)
        await switch.tick()  # the first scan
        assert set(countdowns(sim)["armed"]) == {"ETHUSDT"} and switch.armed.keys() == {"ETHUSDT"}
        first = countdowns(sim)["armed"]["ETHUSDT"]["armedAt"]
        calls = countdowns(sim)["calls"]
        sim.control("clock", {"advance_ms": 10_000})
        exchange.connectivity.offset_ms = None  # our clock follows the exchange's: resync
        loop.advance(10)
        await switch.tick()  # a renewal (every seconds / 3): no scan yet
        assert countdowns(sim)["calls"] == calls + 1
        assert countdowns(sim)["armed"]["ETHUSDT"]["armedAt"] >= first + 10_000  # the countdown starts again
        sim.control("clock", {"skew_ms": 0})
        exchange.connectivity.offset_ms = None
        human.futures_cancel_all_open_orders(symbol="ETHUSDT")
        loop.advance(deadman.SCAN_S)
        await switch.tick()  # the scan finds no open order on ETHUSDT: disarmed
        assert countdowns(sim)["armed"] == {} and switch.armed == {}
        assert switch.view()["armed"] == []
    finally:
        await switch.aclose()
        await exchange.close()


async def test_a_renewal_that_fails_is_logged_at_a_bounded_rate_and_shown(sim, human, caplog):
    loop = FakeClock()
    switch, exchange = _switch(sim, [POLICY], loop)
    caplog.set_level(logging.WARNING, logger="binance_mcp.policy")
    try:
        human.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
                                   price="90000")
        await exchange.call("futures_time", "Reading the time", signed=False)
        await switch.tick()
        assert "BTCUSDT" in countdowns(sim)["armed"]
        sim.control("faults", {"kind": "error_5xx", "path": "/fapi/v1/countdownCancelAll", "count": -1})
        for _ in range(4):  # four failed renewals within 40 s: one WARNING line
            loop.advance(10)
            await switch.tick()
        lines = [r.getMessage() for r in caplog.records if "dead man's switch" in r.getMessage()]
        assert len(lines) == 1 and "BTCUSDT" in lines[0], lines
        view = switch.view()
        assert view["failures"] == 4 and "BTCUSDT" in view["last_error"] and view["last_error_at"].endswith("Z")
        loop.advance(deadman.WARN_EVERY_S)
        await switch.tick()
        lines = [r.getMessage() for r in caplog.records if "dead man's switch" in r.getMessage()]
        assert len(lines) == 2 and "more since the last line" in lines[1], lines
        sim.control("faults", {}, method="DELETE")
        loop.advance(10)
        await switch.tick()
        assert "failures" not in switch.view()
        assert any("works again" in r.getMessage() for r in caplog.records)
    finally:
        await switch.aclose()
        await exchange.close()
    assert countdowns(sim)["armed"] == {}  # aclose disarmed


async def test_a_policy_reload_that_removes_the_switch_disarms_it(sim, human):
    loop = FakeClock()
    policy = [POLICY]
    switch, exchange = _switch(sim, policy, loop)
    try:
        human.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
                                   price="90000")
        await exchange.call("futures_time", "Reading the time", signed=False)
        await switch.tick()
        assert "BTCUSDT" in countdowns(sim)["armed"]
        policy[0] = "version: 1\ndefault: allow\n"
        await switch.tick()
        assert countdowns(sim)["armed"] == {} and switch.view() is None
        assert switch.interval() == deadman.OFF_POLL_S
    finally:
        await switch.aclose()
        await exchange.close()
    assert len(open_futures(sim)) == 1


def test_policy_bounds_and_check_say_what_it_cancels(tmp_path):
    from binance_mcp.policy.loader import PolicyLoadError

    for bad in ("{seconds: 29}", "{seconds: 86401}", "{seconds: '60'}", "{secs: 60}", "60"):
        with pytest.raises(PolicyLoadError) as info:
            parse_text(f"version: 1\naccount:\n  dead_man_switch: {bad}\n", "p.yaml")
        assert "p.yaml:3: account.dead_man_switch" in str(info.value), str(info.value)
    loaded = parse_text(POLICY, "p.yaml")
    text = deadman.describe(loaded.policy)
    assert "30 s" in text and "EVERY open order" in text and "a human placed elsewhere" in text
    assert deadman.describe(parse_text("version: 1\n", "p.yaml").policy) is None


def test_policy_check_and_schema_say_it_plainly(tmp_path):
    """``binance-mcp policy check`` says what the switch cancels; ``policy schema`` has the key and its bounds."""
    import json
    import subprocess
    import sys

    path = write_policy(tmp_path / "p.yaml", POLICY)
    check = subprocess.run([sys.executable, "-m", "binance_mcp", "policy", "check", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    (line,) = [x for x in check.stdout.splitlines() if "dead man's switch" in x]
    assert "countdownCancelAll" in line and "30 s" in line and "EVERY open order" in line
    assert "including orders a human placed elsewhere" in line and "clean shutdown disarms it" in line
    schema = json.loads(subprocess.run([sys.executable, "-m", "binance_mcp", "policy", "schema"],
                                       capture_output=True, text=True, timeout=60).stdout)
    seconds = schema["$defs"]["DeadManSwitch"]["properties"]["seconds"]
    assert (seconds["minimum"], seconds["maximum"]) == (30, 86400)
