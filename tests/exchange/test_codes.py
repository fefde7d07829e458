"""Binance's error codes: every row of the one table, through every place that decides from a code.

For each row: the agent's error (translate), whether a read is retried (the adapter), whether an order's answer
counts as lost (the exactly-once placement) and whether a 4xx refusal gives the guard's reservation back. The
expected sets are written out as literals, so a changed flag in the table fails here until it is meant.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from binance.exceptions import BinanceAPIException

from binance_mcp.errors import FIX_INPUT, HUMAN, RETRY_LATER, ExchangeRejected, ExchangeUnavailable
from binance_mcp.exchange import codes
from binance_mcp.exchange.client import Exchange, _transient
from binance_mcp.exchange.codes import CODES, definitely_not_executed, fate_unknown, retryable_read
from binance_mcp.exchange.orders import OrderNotPlaced, _lost, place_once
from binance_mcp.exchange.translate import translate
from binance_mcp.policy import guard
from binance_mcp.settings import load_settings
from tests.fakeclock import FakeClock

ROOT = Path(__file__).resolve().parents[2]

# Every code the server knows: the 53 it translated before the table, plus -1006 and -1007, -4049, -4051
# and -5027 (position margin and order modify, which the simulator answers as Binance does), and the paper
# exchange's own -1999 (its live feed cannot read the market: simulator/upstream.py).
ALL = {
    -1999,
    -1000, -1001, -1003, -1006, -1007, -1008, -1013, -1015, -1021, -1022,
    -1100, -1102, -1104, -1106, -1111, -1114, -1115, -1116, -1117, -1121, -1127, -1128,
    -2010, -2011, -2013, -2014, -2015, -2019, -2021, -2022, -2025, -2027,
    -4002, -4003, -4004, -4005, -4013, -4014, -4015, -4016, -4023, -4024, -4028,
    -4045, -4046, -4047, -4048, -4049, -4051, -4059, -4061, -4116, -4120, -4137, -4164, -5021, -5022, -5027,
}
RETRY_READ = {-1000, -1001, -1008}  # a read that got one is sent again (bounded, with backoff)
FATE_UNKNOWN = {-1000, -1001, -1006, -1007}  # Binance may have carried the request out (-1008: refused, not lost)
ANSWER_LOST = {-1000, -1001, -1006, -1007, -1008}  # an order that got one is looked up by its client id
HUMAN_CODES = {-1022, -2014, -2015, -1999}  # key and secret problems; the paper feed's network
RETRY_LATER_CODES = {-1000, -1001, -1003, -1006, -1007, -1008, -1015, -1021}


def expected_remedy(code: int) -> str:
    return HUMAN if code in HUMAN_CODES else RETRY_LATER if code in RETRY_LATER_CODES else FIX_INPUT


def test_the_table_has_exactly_the_known_codes_once_each():
    assert set(CODES) == ALL
    assert len(codes._ROWS) == len(ALL)  # no code is listed twice (the later row would silently win)
    assert all(code == row.code for code, row in CODES.items())


def test_the_derived_sets_are_the_expected_literals():
    assert codes.RETRY_READ_CODES == RETRY_READ
    assert codes.FATE_UNKNOWN_CODES == FATE_UNKNOWN
    assert codes.ANSWER_LOST_CODES == ANSWER_LOST
    assert {c for c, row in CODES.items() if row.remedy == HUMAN} == HUMAN_CODES
    assert {c for c, row in CODES.items() if row.remedy == RETRY_LATER} == RETRY_LATER_CODES
    assert {row.remedy for row in CODES.values()} == {FIX_INPUT, RETRY_LATER, HUMAN}


def test_the_guard_uses_the_tables_helper():
    assert guard.definitely_not_executed is definitely_not_executed
    assert not hasattr(guard, "UNKNOWN_FATE_CODES")


@pytest.mark.parametrize("code", sorted(CODES, reverse=True))
def test_every_row(code):
    row = CODES[code]
    assert row.advice.strip() and row.advice.endswith("."), "the advice is a sentence the agent can act on"

    # The agent's error: the code, the row's remedy and advice, in the message Binance's msg is quoted in.
    err = translate(code, "Some message.", 400, "Placing a spot order")
    assert isinstance(err, ExchangeRejected)
    assert err.binance_code == code and err.http_status == 400
    assert err.remedy == row.remedy == expected_remedy(code)
    assert err.message.startswith("Placing a spot order was rejected by Binance: Some message. "
                                  f"(Binance code {code}). ")
    if code != -2010:  # -2010's advice depends on the message (see the test below)
        assert err.message.endswith(row.advice)

    # Reads: retried on the transient codes only (with a 4xx status; any 5xx is retried whatever the code).
    assert _transient(err) is retryable_read(err) is (code in RETRY_READ)
    assert _transient(translate(code, "m", 503, "Reading")) is True

    # Orders: a lost answer is looked up by client id, never sent again; a refusal is reported.
    assert _lost(err) is (code in ANSWER_LOST)
    assert _lost(translate(code, "m", 500, "Placing")) is True
    assert _lost(translate(code, "m", 408, "Placing")) is True

    # The guard: only a definite 4xx refusal gives the reservation back.
    assert fate_unknown(code) is (code in FATE_UNKNOWN)
    assert definitely_not_executed(err) is (code not in FATE_UNKNOWN)
    assert guard.definitely_not_executed(err) is (code not in FATE_UNKNOWN)
    assert definitely_not_executed(translate(code, "m", 429, "Placing")) is (code not in FATE_UNKNOWN)
    assert definitely_not_executed(translate(code, "m", 408, "Placing")) is False
    assert definitely_not_executed(translate(code, "m", 503, "Placing")) is False
    assert definitely_not_executed(translate(code, "m", None, "Placing")) is False


def test_a_code_outside_the_table():
    refused = translate(-9999, "Odd.", 400, "Reading")
    assert refused.remedy == FIX_INPUT and "See Binance's error code list" in refused.message
    assert translate(-9999, "Odd.", 500, "Reading").remedy == RETRY_LATER
    assert not _transient(refused) and not _lost(refused) and definitely_not_executed(refused)
    assert not fate_unknown(-9999) and not fate_unknown(None)


def test_the_message_refines_minus_2010_and_status_418_overrides():
    err = translate(-2010, "Account has insufficient balance for requested action.", 400, "Placing")
    assert err.message.endswith("reduce the quantity or cancel open orders.")
    assert translate(-2010, "Something new.", 400, "Placing").message.endswith(CODES[-2010].advice)
    banned = translate(-1003, "Way too much request weight used; IP banned until 1.", 418, "Reading", 120)
    assert banned.remedy == RETRY_LATER and "banned this IP" in banned.message
    assert banned.message.endswith("Retry after 120 s.")


def test_no_answer_is_judged_by_whether_the_request_was_sent():
    sent, refused = ExchangeUnavailable(True, "timeout"), ExchangeUnavailable(False, "cannot connect")
    assert retryable_read(sent) and not retryable_read(refused)
    assert _lost(sent) and _lost(refused)  # place_once handles "never sent" before asking _lost


def test_every_binance_code_in_the_docs_is_in_the_table():
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    texts.append((ROOT / "README.md").read_text(encoding="utf-8"))
    mentioned = {int(m) for text in texts for m in re.findall(r"(?<![\w.\d])(-[1-5]\d{3})(?![\d.])", text)}
    assert {-1006, -1007, -1008} <= mentioned  # the troubleshooting guide explains the unknown-fate codes
    assert mentioned - ALL == set()


# -- the table wired through the adapter and the placement ------------------------------------------------

class _Response:
    headers: dict = {}
    text = ""


def _api_exception(code: int, status: int) -> BinanceAPIException:
    return BinanceAPIException(_Response(), status, f'{{"code": {code}, "msg": "Binance says no."}}')


class _FakeClient:
    """Fails each method's first call with the given Binance error, then answers."""

    def __init__(self, code: int, status: int) -> None:
        self.error = _api_exception(code, status)
        self.calls: dict[str, int] = {}

    def __getattr__(self, method: str):
        async def call(**params):
            self.calls[method] = self.calls.get(method, 0) + 1
            if self.calls[method] == 1:
                raise self.error
            return {"method": method}
        return call


def _exchange(code: int, status: int) -> tuple[Exchange, _FakeClient]:
    settings = load_settings({"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s",
                              "BINANCE_MCP_BASE_URL": "http://127.0.0.1:9"})
    exchange = Exchange(settings)
    fake = _FakeClient(code, status)
    exchange._client = fake
    exchange.connectivity.offset_ms = 0  # no time sync
    exchange.keycheck.needed = False  # the fake answers no apiRestrictions (tests/e2e/test_safety_nets.py has it)

    async def no_sleep(_seconds):
        return None

    exchange.sleep = no_sleep
    return exchange, fake


@pytest.mark.parametrize("code", sorted(CODES, reverse=True))
async def test_every_row_through_the_adapter(code):
    exchange, fake = _exchange(code, 400)
    if code in RETRY_READ:
        assert await exchange.call("get_account", "Reading the spot account", signed=False) == {"method": "get_account"}
        assert fake.calls["get_account"] == 2
    else:
        with pytest.raises(ExchangeRejected) as info:
            await exchange.call("get_account", "Reading the spot account", signed=False)
        assert info.value.binance_code == code and fake.calls["get_account"] == 1
    # A state change is never retried, whatever the code.
    with pytest.raises(ExchangeRejected):
        await exchange.call("create_order", "Placing a spot order", signed=False, symbol="BTCUSDT")
    assert fake.calls["create_order"] == 1


class _FakeOrderExchange:
    """The order request fails with a translated Binance error; the lookup by client id finds the order."""

    recv_window_s = 0.0

    def __init__(self, code: int, status: int) -> None:
        self.error = translate(code, "Binance says no.", status, "Placing a spot order")
        self.methods: list[str] = []
        self.clock = FakeClock()
        self.sleep = self.clock.sleep

    async def call(self, method, what, retry=None, **params):
        self.methods.append(method)
        if method == "create_order":
            raise self.error
        return {"clientOrderId": params.get("origClientOrderId"), "status": "NEW"}


@pytest.mark.parametrize("code", sorted(CODES, reverse=True))
async def test_every_row_through_the_exactly_once_placement(code):
    exchange = _FakeOrderExchange(code, 400)
    args = ("create_order", "Placing a spot order", "cid-1", "get_order", {"origClientOrderId": "cid-1"})
    if code in ANSWER_LOST:
        order, note = await place_once(exchange, *args, symbol="BTCUSDT")
        assert order["clientOrderId"] == "cid-1" and "placed exactly once" in note
        assert exchange.methods == ["create_order", "get_order"]
    else:
        with pytest.raises(ExchangeRejected) as info:
            await place_once(exchange, *args, symbol="BTCUSDT")
        assert info.value is exchange.error and exchange.methods == ["create_order"]


async def test_a_lost_minus_1008_with_no_order_ends_as_not_placed():
    """-1008 is not fate-unknown, but an order that met it is still looked up; finding none, nothing was placed."""

    class NotFound(_FakeOrderExchange):
        async def call(self, method, what, retry=None, **params):
            self.methods.append(method)
            if method == "create_order":
                raise self.error
            raise translate(-2013, "Order does not exist.", 400, what)

    exchange = NotFound(-1008, 400)
    with pytest.raises(OrderNotPlaced):
        await place_once(exchange, "create_order", "Placing a spot order", "cid-2", "get_order",
                         {"origClientOrderId": "cid-2"}, symbol="BTCUSDT")
    assert exchange.methods[0] == "create_order" and "get_order" in exchange.methods
