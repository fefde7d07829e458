"""``binance-mcp simulator`` as a real subprocess: the banner on stderr gives the URL, key and secret; the
real python-binance Client trades spot and futures against it; stdout stays empty; bad input exits with 2."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal as D

import pytest
from binance import Client
from binance.exceptions import BinanceAPIException

from tests.helpers import point_at
from tests.simulator.helpers import CliSimulator as Simulator

KEY = "CliTestKey0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789"
SECRET = "CliTestSecret0123456789abcdefABCDEF0123456789abcdefABCDEF012345"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "simulator", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def cli_sim():
    sim = Simulator("--port", "0", "--tick-seconds", "0", "--api-key", KEY, "--api-secret", SECRET,
                    "--balances", "USDT=5000,BTC=0.5", "--futures-balances", "USDT=2000")
    yield sim
    if sim.proc.poll() is None:
        sim.proc.kill()
        sim.proc.communicate()


def test_cli_simulator_trades_spot_and_futures_with_the_real_client(cli_sim):
    info = cli_sim.banner()
    assert info["key"] == KEY and info["secret"] == SECRET and info["controls"] == "off"
    client = point_at(Client(info["key"], info["secret"], ping=False), info["url"])
    try:
        assert client.ping() == {}
        balances = {b["asset"]: D(b["free"]) for b in client.get_account()["balances"]}
        assert balances["USDT"] == 5000 and balances["BTC"] == D("0.5")
        # Spot: a resting order is cancelled, a crossing one fills.
        price = D(client.get_symbol_ticker(symbol="BTCUSDT")["price"])
        low = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                  quantity="0.001", price=str((price * D("0.9")).quantize(D("0.01"))))
        assert low["status"] == "NEW"
        assert client.cancel_order(symbol="BTCUSDT", orderId=low["orderId"])["status"] == "CANCELED"
        high = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                   quantity="0.001", price=str((price * D("1.01")).quantize(D("0.01"))))
        assert client.get_order(symbol="BTCUSDT", orderId=high["orderId"])["status"] == "FILLED"
        balances = {b["asset"]: D(b["free"]) for b in client.get_account()["balances"]}
        assert balances["BTC"] > D("0.5") and balances["USDT"] < 5000
        # Futures: open a position and close it.
        assert D(client.futures_account_balance()[0]["balance"]) == 2000
        opened = client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002",
                                             newOrderRespType="RESULT")
        assert opened["status"] == "FILLED"
        (pos,) = client.futures_position_information(symbol="BTCUSDT")
        assert D(pos["positionAmt"]) == D("0.002")
        closed = client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002",
                                             reduceOnly="true", newOrderRespType="RESULT")
        assert closed["status"] == "FILLED" and client.futures_position_information() == []
        trades = client.futures_account_trades(symbol="BTCUSDT")
        net = sum((D(t["realizedPnl"]) - D(t["commission"]) for t in trades), D(0))
        assert D(client.futures_account_balance()[0]["balance"]) == 2000 + net
        # The default credentials are not accepted when others were given, and controls are off by default.
        with pytest.raises(BinanceAPIException) as err:
            point_at(Client("SomeOtherKey", SECRET, ping=False), info["url"]).get_account()
        assert err.value.code == -2015
        assert client.session.get(info["url"] + "/_sim/state", timeout=10).status_code == 404
    finally:
        client.close_connection()
    code, stdout = cli_sim.stop()
    assert code == 0 and stdout == "", "stdout must stay empty (it is the MCP channel when serving)"


def test_cli_simulator_with_controls():
    sim = Simulator("--port", "0", "--controls", "--tick-seconds", "0")
    try:
        info = sim.banner()
        assert info["controls"] == f"on at {info['url']}/_sim/"
        state = Client(info["key"], info["secret"], ping=False).session.get(info["url"] + "/_sim/state",
                                                                             timeout=10).json()
        assert state["prices"]["BTCUSDT"]
    finally:
        code, stdout = sim.stop()
    assert code == 0 and stdout == ""


def test_cli_simulator_api_restrictions_flag():
    """``--api-restrictions`` sets what GET /sapi/v1/account/apiRestrictions answers, merged over the default."""
    sim = Simulator("--port", "0", "--tick-seconds", "0", "--api-restrictions",
                    '{"enableWithdrawals": true, "ipRestrict": false}')
    try:
        info = sim.banner()
        client = point_at(Client(info["key"], info["secret"], ping=False), info["url"])
        answer = client.get_account_api_permissions()
        assert answer["enableWithdrawals"] is True and answer["ipRestrict"] is False
        assert answer["enableFutures"] is True and answer["permitsUniversalTransfer"] is False
        client.close_connection()
    finally:
        code, stdout = sim.stop()
    assert code == 0 and stdout == ""


@pytest.mark.parametrize("args, message", [
    (("--api-restrictions", "{nope"), "--api-restrictions is not JSON"),
    (("--api-restrictions", '{"withdrawals": true}'), "unknown field 'withdrawals'"),
    (("--balances", "USDT=abc"), "'abc' is not a number"),
    (("--balances", "USDT10000"), "is not ASSET=AMOUNT"),
    (("--futures-balances", "USDT=-5"), "finite number >= 0"),
])
def test_bad_balances_exit_2_with_a_clear_message(args, message):
    result = run("--port", "0", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("binance-mcp simulator: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_port_is_a_usage_error():
    result = run("--port", "not-a-port")
    assert result.returncode == 2 and result.stdout == "" and "--port" in result.stderr
