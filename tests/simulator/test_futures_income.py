"""USD-M futures income history (/fapi/v1/income): each fill writes its commission and realised PnL, in
Binance's fields, and the query filters and pages as Binance does."""

from __future__ import annotations

from decimal import Decimal as D

from tests.simulator.helpers import api_error
from tests.simulator.test_futures_account import set_futures, usdt_wallet


def _round_trip(client, sim) -> tuple[list[dict], D]:
    set_futures(sim, "95000")
    before = usdt_wallet(client)
    client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    set_futures(sim, "96000")
    client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.010")
    return client.futures_account_trades(symbol="BTCUSDT"), usdt_wallet(client) - before


def test_fills_write_commission_and_realized_pnl(client, sim):
    trades, wallet_change = _round_trip(client, sim)
    rows = client.futures_income_history()
    assert [r["incomeType"] for r in rows] == ["COMMISSION", "REALIZED_PNL", "COMMISSION"]
    by_trade = {str(t["id"]): t for t in trades}
    for r in rows:
        assert set(r) == {"symbol", "incomeType", "income", "asset", "info", "time", "tranId", "tradeId"}
        assert r["symbol"] == "BTCUSDT" and r["asset"] == "USDT" and r["tradeId"] in by_trade
        t = by_trade[r["tradeId"]]
        want = -D(t["commission"]) if r["incomeType"] == "COMMISSION" else D(t["realizedPnl"])
        assert D(r["income"]) == want and r["time"] == t["time"]
    pnl = D(rows[1]["income"])
    assert pnl == (D("96000.0") - D("95000.1")) * D("0.010")  # sold at the bid, bought at the ask
    assert sum(D(r["income"]) for r in rows) == wallet_change  # the ledger explains the wallet
    assert len({r["tranId"] for r in rows}) == 3


def test_income_filters_and_paging(client, sim):
    _round_trip(client, sim)
    assert [r["incomeType"] for r in client.futures_income_history(incomeType="COMMISSION")] == ["COMMISSION"] * 2
    assert client.futures_income_history(symbol="ETHUSDT") == []
    rows = client.futures_income_history()
    newest = client.futures_income_history(limit=1)
    assert newest == rows[-1:]  # no startTime: the most recent records
    oldest = client.futures_income_history(startTime=rows[0]["time"], limit=1)
    assert oldest == rows[:1]  # from startTime: the oldest first
    assert client.futures_income_history(startTime=rows[0]["time"], limit=2, page=2) == rows[2:3]
    assert client.futures_income_history(endTime=rows[0]["time"] - 1) == []
    assert api_error(client.futures_income_history, incomeType="BONUS").code == -1100
    assert api_error(client.futures_income_history, symbol="NOPEUSDT").code == -1121
    assert api_error(client.futures_income_history, limit=1001).code == -1130
    assert api_error(client.futures_income_history, startTime=2, endTime=1).code == -1128


def test_ledger_add_and_storage_round_trip():
    from binance_mcp.simulator.income import IncomeLedger

    ledger = IncomeLedger()
    first = ledger.add("BTCUSDT", "FUNDING_FEE", D("-0.125"), 1_000)
    again = IncomeLedger.load(ledger.dump())
    second = again.add("ETHUSDT", "FUNDING_FEE", D("0.5"), 2_000)
    assert again.records[0] == first and second.tran_id == first.tran_id + 1
    assert first.as_dict()["income"] == "-0.12500000" and first.as_dict()["info"] == "FUNDING_FEE"
