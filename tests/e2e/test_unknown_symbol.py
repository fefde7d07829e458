"""One code for a symbol that does not exist, from every kind of tool: UNKNOWN_SYMBOL, with the hint to
binance_exchange_info, whether the exchange said so (Binance's -1121) or the server's own check on exchangeInfo
did. In paper mode no error text names the paper exchange's temporary port (127.0.0.1:<port>)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Paper

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASES = [
    ("binance_spot_price", {"symbol": "NOPEUSDT"}),
    ("binance_futures_price", {"symbol": "XRPUSDT"}),  # spot only
    ("binance_spot_orderbook", {"symbol": "NOPEUSDT"}),
    ("binance_spot_klines", {"symbol": "NOPEUSDT", "interval": "1h"}),
    ("binance_futures_klines", {"symbol": "XRPUSDT", "interval": "1h"}),
    ("binance_spot_place_order", {"symbol": "NOPEUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                                  "price": "1"}),
    ("binance_futures_place_order", {"symbol": "XRPUSDT", "side": "BUY", "type": "MARKET", "quantity": "100"}),
    ("binance_exchange_info", {"symbol": "NOPEUSDT"}),
    ("binance_exchange_info", {"market": "futures", "symbol": "XRPUSDT"}),
    ("binance_check_order_precision", {"symbol": "NOPEUSDT", "price": "1", "quantity": "1"}),
    ("binance_compare_spot_futures_price", {"symbol": "ETHBTC"}),  # no perpetual
]


@pytest.mark.parametrize(("tool", "args"), CASES, ids=[f"{t}-{a['symbol']}" for t, a in CASES])
async def test_an_unknown_symbol_is_unknown_symbol_from_every_tool(paper: Paper, tool, args):
    await paper.unknown_symbol(tool, args)


async def test_both_sources_of_the_code_are_covered(paper: Paper):
    """The exchange's -1121 and the server's own exchangeInfo check both give UNKNOWN_SYMBOL (the parametrised
    cases above would pass with only one of them otherwise)."""
    from_exchange = await paper.unknown_symbol("binance_spot_price", {"symbol": "NOPEUSDT"})
    own = await paper.unknown_symbol("binance_exchange_info", {"symbol": "NOPEUSDT"})
    assert "(Binance code -1121)" in from_exchange
    assert own.startswith("UNKNOWN_SYMBOL: NOPEUSDT is not a spot symbol on the paper exchange")


async def test_an_unreachable_paper_exchange_is_not_named_by_its_port(paper: Paper):
    paper.sim("faults", {"kind": "drop_before", "path": "/api/v3/ticker/price", "count": 1000})
    text = await paper.error("binance_spot_price", {"symbol": "BTCUSDT"})
    assert text.startswith("EXCHANGE_UNAVAILABLE: "), text
    assert "the paper exchange is unreachable" in text, text
    assert "127.0.0.1:" not in text and paper.host not in text, text
    paper.sim("faults", method="DELETE")
    # The diagnostics tool still reports where the paper exchange runs (its data, not an error text).
    status = await paper.call("binance_account_status")
    assert status["host"] == paper.host
