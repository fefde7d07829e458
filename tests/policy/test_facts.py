"""facts.gather with a small fake PriceSource: how the server computes notional, deviation and positions.

The fake implements the PriceSource protocol with fixed numbers and records every request, so the tests also
show that a price the agent sends is never read for a market order and that no fact is fetched unless needed.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_mcp.policy.engine import Call
from binance_mcp.policy.facts import QUOTES, FactError, OpenLeg, PriceSource, gather

D = Decimal
SPOT, FUT, CLOSE = "binance_spot_place_order", "binance_futures_place_order", "binance_futures_close_position"


class FakePrices:
    """A PriceSource with a fixed book, last prices, mark prices, positions and leverage."""

    def __init__(self, book=None, last=None, mark=None, positions=None, leverage=None, open_orders=0, fbook=None,
                 hedge=False, legs=()):
        self.book = book or {"BTCUSDT": (D("99"), D("101")), "ETHBTC": (D("0.049"), D("0.051")),
                             "BTCTRY": (D("2999000"), D("3001000")), "BTCFDUSD": (D("98990"), D("99010"))}
        self.last = last or {"BTCUSDT": D("100"), "ETHBTC": D("0.05"), "BTCTRY": D("3000000"),
                             "BTCFDUSD": D("99000")}
        self.mark = mark or {"BTCUSDT": D("100000")}
        self.fbook = fbook or {"BTCUSDT": (D("99990"), D("100010"))}
        self.hedge = hedge
        self.legs = list(legs)
        self.positions_by_symbol = positions or {}
        self.leverages = leverage or {}
        self.open_count = open_orders
        self.requests: list[tuple[str, str]] = []

    async def spot_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        self.requests.append(("book", symbol))
        return self.book[symbol]

    async def spot_price(self, symbol: str) -> Decimal:
        self.requests.append(("price", symbol))
        return self.last[symbol]  # KeyError: no such market, as the exchange would answer

    async def mark_price(self, symbol: str) -> Decimal:
        self.requests.append(("mark", symbol))
        return self.mark[symbol]

    async def futures_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        self.requests.append(("fbook", symbol))
        return self.fbook[symbol]

    async def position_mode(self) -> bool:
        self.requests.append(("mode", ""))
        return self.hedge

    async def open_legs(self, symbol: str) -> list:
        self.requests.append(("open_legs", symbol))
        return list(self.legs)

    async def quote_asset(self, market: str, symbol: str) -> str:
        return next(q for q in sorted(QUOTES, key=len, reverse=True) if symbol.endswith(q))

    async def open_orders(self, market: str) -> int:
        self.requests.append(("open_orders", market))
        return self.open_count

    async def leverage(self, symbol: str) -> int:
        self.requests.append(("leverage", symbol))
        if symbol not in self.leverages:
            raise FactError(f"no leverage setting for {symbol}")
        return self.leverages[symbol]

    async def positions(self, symbol: str) -> dict[str, Decimal]:
        self.requests.append(("positions", symbol))
        return dict(self.positions_by_symbol.get(symbol, {}))

    async def position(self, symbol: str, side: str) -> Decimal:
        return (await self.positions(symbol)).get(side, D(0))


def test_the_fake_implements_the_protocol():
    src: PriceSource = FakePrices()  # a type checker holds this line to the protocol
    assert all(callable(getattr(src, name)) for name in PriceSource.__dict__ if not name.startswith("_"))


def spot(**args) -> Call:
    return Call(SPOT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", **args})


@pytest.mark.parametrize(("args", "notional"), [
    ({"quantity": "2"}, "202"),  # BUY at the best ask
    ({"quantity": "2", "side": "SELL"}, "198"),  # SELL at the best bid
    ({"quantity": "2", "price": "1"}, "202"),  # the agent's price is ignored for a market order
    ({"quantity": "2", "side": "SELL", "price": "1000000"}, "198"),
    ({"quoteOrderQty": "150"}, "150"),  # the quote amount is the notional
    # Every other order: the higher of its limit or stop price and the current price, on both sides.
    ({"type": "LIMIT", "quantity": "2", "price": "95"}, "202"),  # a BUY under the market counts at the ask
    ({"type": "LIMIT", "quantity": "2", "price": "120"}, "240"),  # one above it at its price
    ({"type": "LIMIT", "quantity": "2", "price": "120", "side": "SELL"}, "240"),  # a SELL above the bid rests
    ({"type": "LIMIT", "quantity": "2", "price": "1", "side": "SELL"}, "198"),  # one under the bid counts at the bid
    ({"type": "STOP_LOSS", "quantity": "2", "stopPrice": "90", "side": "SELL"}, "198"),  # a stop under: the bid
    ({"type": "STOP_LOSS", "quantity": "2", "stopPrice": "130"}, "260"),  # a BUY stop far above: at the stop
    ({"type": "STOP_LOSS_LIMIT", "quantity": "2", "stopPrice": "90", "price": "1", "side": "SELL"}, "198"),
    ({"type": "TAKE_PROFIT_LIMIT", "quantity": "2", "stopPrice": "90", "price": "150", "side": "SELL"}, "300"),
])
async def test_spot_notional(args, notional):
    facts = await gather(spot(**args), {"notional"}, FakePrices())
    assert facts.notional_usd == D(notional)


async def test_quote_order_qty_derives_the_quantity_from_the_ask():
    facts = await gather(spot(quoteOrderQty="202"), {"notional"}, FakePrices())
    assert (facts.quantity, facts.reference_price) == (D("2"), D("101"))


async def test_non_stable_quote_converts_through_its_usdt_price():
    src = FakePrices(last={"BTCUSDT": D("100000"), "ETHBTC": D("0.05")})
    call = Call(SPOT, {"symbol": "ETHBTC", "side": "BUY", "type": "LIMIT", "quantity": "2", "price": "0.05"})
    facts = await gather(call, {"notional"}, src)
    assert facts.notional_usd == D("10200")  # 2 x the 0.051 ask = 0.102 BTC at 100,000 USD
    assert ("price", "BTCUSDT") in src.requests


async def test_no_conversion_path_is_a_fact_error():
    call = Call(SPOT, {"symbol": "BTCTRY", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "3000000"})
    with pytest.raises(FactError, match="no USD conversion for TRY: TRYUSDT has no price"):
        await gather(call, {"notional"}, FakePrices())


async def test_stable_quotes_count_one_to_one():
    call = Call(SPOT, {"symbol": "BTCFDUSD", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "99000"})
    src = FakePrices()
    assert (await gather(call, {"notional"}, src)).notional_usd == D("99010")  # the ask, 1:1
    assert src.requests == [("book", "BTCFDUSD"), ("price", "BTCFDUSD")]  # no conversion price


async def test_deviation_is_against_the_last_price():
    facts = await gather(spot(type="LIMIT", quantity="1", price="103"), {"deviation"}, FakePrices())
    assert (facts.price_deviation_pct, facts.reference_price) == (D("3"), D("100"))


async def test_nothing_is_fetched_when_nothing_is_needed():
    src = FakePrices()
    facts = await gather(spot(quantity="2"), set(), src)
    assert src.requests == [] and facts.as_dict() == {}


def fut(**args) -> Call:
    return Call(FUT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", **args})


@pytest.mark.parametrize(("args", "position", "notional"), [
    ({"quantity": "0.5"}, "0", "50005"),  # a market BUY: the higher of the ask and the mark
    ({"quantity": "0.5", "side": "SELL"}, "0", "50000"),  # a market SELL: the bid is under the mark, so the mark
    ({"type": "LIMIT", "quantity": "0.5", "price": "1"}, "0", "50005"),  # never the agent's low price
    ({"type": "LIMIT", "quantity": "0.5", "price": "120000"}, "0", "60000"),  # nor under its own high one
    ({"type": "STOP_MARKET", "quantity": "0.5", "stopPrice": "150000"}, "0", "75000"),  # a stop far up: the stop
    ({"type": "STOP_MARKET", "stopPrice": "90000", "closePosition": True, "side": "SELL"}, "0.3", "30000"),
    ({"type": "STOP_MARKET", "stopPrice": "110000", "closePosition": True}, "-0.2", "22000"),
])
async def test_futures_notional(args, position, notional):
    src = FakePrices(positions={"BTCUSDT": {"BOTH": D(position)}})
    facts = await gather(fut(**args), {"notional"}, src)
    assert facts.notional_usd == D(notional)


@pytest.mark.parametrize(("side", "notional"), [(None, "30000"), ("LONG", "20000"), ("SHORT", "10000")])
async def test_close_position_uses_the_positions_it_closes(side, notional):
    src = FakePrices(positions={"BTCUSDT": {"LONG": D("0.2"), "SHORT": D("-0.1")}})
    args = {"symbol": "BTCUSDT", **({"positionSide": side} if side else {})}
    assert (await gather(Call(CLOSE, args), {"notional"}, src)).notional_usd == D(notional)


@pytest.mark.parametrize(("args", "position", "reduces"), [
    ({"side": "SELL", "quantity": "0.2", "reduceOnly": True}, "0.5", True),
    ({"side": "SELL", "quantity": "0.5", "reduceOnly": True}, "0.5", True),
    ({"side": "SELL", "quantity": "0.6", "reduceOnly": True}, "0.5", False),  # would flip the position
    ({"side": "SELL", "quantity": "0.2"}, "0.5", False),  # not flagged
    ({"side": "BUY", "quantity": "0.2", "reduceOnly": True}, "0.5", False),  # same side adds
    ({"side": "BUY", "quantity": "0.2", "reduceOnly": True}, "-0.5", True),
    ({"side": "SELL", "quantity": "0.2", "reduceOnly": True}, "0", False),  # nothing to reduce
])
async def test_reduces_position(args, position, reduces):
    src = FakePrices(positions={"BTCUSDT": {"BOTH": D(position)}})
    assert (await gather(fut(**args), {"position"}, src)).reduces_position is reduces


async def test_position_after_the_order_at_mark_price():
    src = FakePrices(positions={"BTCUSDT": {"BOTH": D("0.3")}})
    facts = await gather(fut(quantity="0.2"), {"position_after"}, src)
    assert facts.position_after_usd == D("50000")


async def test_open_orders_that_add_to_the_position_count_in_full():
    legs = [OpenLeg("BUY", "BOTH", D("0.4"), False),  # a resting buy
            OpenLeg("BUY", "BOTH", D("0.1"), False),  # a conditional buy (stop) that has not triggered
            OpenLeg("SELL", "BOTH", D("0.3"), True),  # a reduce-only sell: never adds
            OpenLeg("BUY", "LONG", D("5"), False)]  # another leg (hedge mode): not this one
    src = FakePrices(positions={"BTCUSDT": {"BOTH": D("0.3")}}, legs=legs)
    facts = await gather(fut(quantity="0.2"), {"position_after"}, src)
    assert facts.position_after_usd == D("100000")  # (0.3 + 0.4 + 0.1 + 0.2) x 100,000
    assert facts.open_adding == 2


async def test_the_worst_case_takes_the_side_that_grows_the_position_most():
    legs = [OpenLeg("SELL", "BOTH", D("2"), False)]  # a big resting sell could flip a long into a short
    src = FakePrices(positions={"BTCUSDT": {"BOTH": D("0.3")}}, legs=legs)
    facts = await gather(fut(quantity="0.2"), {"position_after"}, src)
    assert facts.position_after_usd == D("150000")  # |0.3 + 0.2 - 2| = 1.5 > 0.5


async def test_hedge_mode_checks_the_leg_of_the_order():
    src = FakePrices(positions={"BTCUSDT": {"LONG": D("0.3"), "SHORT": D("-2")}}, hedge=True)
    facts = await gather(fut(quantity="0.2", positionSide="LONG"), {"position_after"}, src)
    assert facts.position_after_usd == D("50000")  # the LONG leg: 0.3 + 0.2


@pytest.mark.parametrize(("hedge", "args", "says"), [
    (False, {"positionSide": "LONG"}, "one-way mode"),
    (True, {}, "hedge mode"),
])
async def test_a_position_side_that_contradicts_the_account_mode_is_invalid_input(hedge, args, says):
    from binance_mcp.errors import InputError

    src = FakePrices(hedge=hedge)
    with pytest.raises(InputError, match=says):
        await gather(fut(quantity="0.2", **args), {"position_after"}, src)
    assert ("positions", "BTCUSDT") not in src.requests


@pytest.mark.parametrize(("book", "last", "says"), [
    ((D("0"), D("101")), D("100"), "not a positive price"),
    ((D("-5"), D("101")), D("100"), "not a positive price"),
    ((D("99"), D("101")), D("0"), "not a positive price"),
    ((D("99"), D("101")), D("-1"), "not a positive price"),
    ((D("99"), D("101")), D("NaN"), "not a positive price"),
    ((D("99"), D("101")), D("Infinity"), "not a positive price"),
    ((D("99"), D("130")), D("100"), "more than 10 % away"),  # a book that disagrees with the last price
    ((D("102"), D("101")), D("100"), "crossed"),
])
async def test_a_price_that_is_not_sane_is_a_fact_error(book, last, says):
    from binance_mcp.policy.facts import ExchangeFacts

    class Exchange:
        clock = staticmethod(lambda: 0.0)

        async def call(self, method, what, signed=True, **params):
            if method == "get_order_book":
                return {"bids": [[str(book[0]), "1"]], "asks": [[str(book[1]), "1"]]}
            return {"price": str(last)}

    with pytest.raises(FactError, match=says):
        await gather(spot(quantity="1"), {"notional"}, ExchangeFacts(Exchange()))


async def test_an_empty_book_is_a_fact_error():
    from binance_mcp.policy.facts import ExchangeFacts

    class Exchange:
        clock = staticmethod(lambda: 0.0)

        async def call(self, method, what, signed=True, **params):
            return {"bids": [], "asks": []} if method == "get_order_book" else {"price": "100"}

    with pytest.raises(FactError, match="order book is empty"):
        await gather(spot(quantity="1"), {"notional"}, ExchangeFacts(Exchange()))


async def test_prices_are_fresh_for_every_decision_and_after_an_answered_order():
    from binance_mcp.policy.facts import FRESH_S, ExchangeFacts

    class Exchange:
        def __init__(self):
            self.now, self.calls = 0.0, []

        def clock(self):
            return self.now

        async def call(self, method, what, signed=True, **params):
            self.calls.append(method)
            return {"bids": [["99", "1"]], "asks": [["101", "1"]]} if method == "get_order_book" else {"price": "100"}

    ex = Exchange()
    src = ExchangeFacts(ex)
    await gather(spot(quantity="1"), {"notional"}, src)
    await gather(spot(quantity="1"), {"notional"}, src)  # within FRESH_S: the same prices
    assert ex.calls == ["get_order_book", "get_symbol_ticker"]
    ex.now += FRESH_S  # older than FRESH_S: fetched again
    await gather(spot(quantity="1"), {"notional"}, src)
    assert len(ex.calls) == 4
    src.invalidate("BTCUSDT")  # an order on the symbol was answered: fetched again at once
    await gather(spot(quantity="1"), {"notional"}, src)
    assert len(ex.calls) == 6


async def test_leverage_and_open_orders_are_read_when_needed():
    src = FakePrices(leverage={"BTCUSDT": 7}, open_orders=4)
    facts = await gather(fut(quantity="1"), {"leverage", "open_orders"}, src)
    assert (facts.leverage, facts.open_orders) == (7, 4)
    assert ("open_orders", "futures") in src.requests


async def test_a_fact_error_carries_the_facts_gathered_before_it():
    with pytest.raises(FactError) as info:
        await gather(fut(quantity="0.01"), {"notional", "leverage"}, FakePrices())
    assert info.value.facts is not None and info.value.facts.notional_usd == D("1000.1")
