"""The USD-M futures income ledger behind ``GET /fapi/v1/income``: realised PnL and commission of each fill,
funding fees, transfers. One record per money movement, in Binance's fields.

API (kept small and stable; other parts of the simulator write through it):

- ``IncomeLedger.add(symbol, income_type, income, time, *, asset="USDT", info="", trade_id="")`` appends a
  record and returns it;
- ``IncomeLedger.query(p, now)`` answers ``/fapi/v1/income`` from the request parameters, as Binance does;
- ``IncomeLedger.records`` is the list of ``IncomeRecord`` in the order they were written; ``dump()`` and
  ``IncomeLedger.load(rows)`` turn it into JSON-able rows and back (for a stored paper account).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError
from binance_mcp.simulator.feed import DAY, fmt
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS

INCOME_TYPES = (
    "TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR",
    "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD", "CROSS_COLLATERAL_TRANSFER",
    "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER", "AUTO_EXCHANGE",
    "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW", "POSITION_LIMIT_INCREASE_FEE",
    "STRATEGY_UMFUTURES_TRANSFER", "FEE_RETURN", "BFUSD_REWARD",
)
DEFAULT_WINDOW_MS = 7 * DAY  # neither startTime nor endTime: the last 7 days
FIRST_TRAN_ID = 9_689_000_001


@dataclass(frozen=True)
class IncomeRecord:
    symbol: str
    income_type: str
    income: Decimal
    asset: str
    info: str
    time: int
    tran_id: int
    trade_id: str

    def as_dict(self) -> dict:
        return {"symbol": self.symbol, "incomeType": self.income_type, "income": fmt(self.income),
                "asset": self.asset, "info": self.info, "time": self.time, "tranId": self.tran_id,
                "tradeId": self.trade_id}


class IncomeLedger:
    """Every income record of the futures account, oldest first."""

    def __init__(self, first_tran_id: int = FIRST_TRAN_ID) -> None:
        self.records: list[IncomeRecord] = []
        self._tran_ids = itertools.count(first_tran_id)

    def add(self, symbol: str, income_type: str, income: Decimal, time: int, *, asset: str = "USDT",
            info: str = "", trade_id: str | int = "") -> IncomeRecord:
        if income_type not in INCOME_TYPES:
            raise ValueError(f"unknown incomeType {income_type!r}")
        record = IncomeRecord(symbol, income_type, Decimal(income), asset, info or income_type, time,
                              next(self._tran_ids), str(trade_id))
        self.records.append(record)
        return record

    def query(self, p: Params, now: int) -> list[dict]:
        symbol = p.raw("symbol")
        if symbol is not None and symbol not in FUTURES_SYMBOLS:
            raise BinanceError(-1121, "Invalid symbol.")
        income_type = p.enum("incomeType", INCOME_TYPES, -1100,
                             "Illegal characters found in parameter 'incomeType'; legal range is '"
                             + "|".join(INCOME_TYPES) + "'.")
        start, end = p.integer("startTime"), p.integer("endTime")
        page = p.integer("page", default=1)
        assert page is not None
        if page < 1:
            raise BinanceError(-1100, "Illegal characters found in parameter 'page'; legal range is '1' to '"
                                      "2147483647'.")
        limit = p.limit(100, 1000)
        if start is not None and end is not None and end < start:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if start is None and end is None:
            start = now - DEFAULT_WINDOW_MS
        rows = [r for r in self.records
                if (symbol is None or r.symbol == symbol) and (income_type is None or r.income_type == income_type)
                and (start is None or r.time >= start) and (end is None or r.time <= end)]
        rows.sort(key=lambda r: (r.time, r.tran_id))
        offset = (page - 1) * limit
        if p.raw("startTime") is not None:  # from startTime on: the oldest ``limit`` records, page by page
            chosen = rows[offset:offset + limit]
        else:  # no startTime: the newest ``limit`` records (page 2 the ones before them), oldest first
            stop = max(len(rows) - offset, 0)
            chosen = rows[max(stop - limit, 0):stop]
        return [r.as_dict() for r in chosen]

    # -- storage ----------------------------------------------------------------------------
    def dump(self) -> list[dict]:
        return [r.as_dict() for r in self.records]

    @classmethod
    def load(cls, rows: list[dict]) -> IncomeLedger:
        ledger = cls()
        for row in rows:
            ledger.records.append(IncomeRecord(row["symbol"], row["incomeType"], Decimal(row["income"]),
                                               row["asset"], row["info"], int(row["time"]), int(row["tranId"]),
                                               str(row["tradeId"])))
        last = max((r.tran_id for r in ledger.records), default=FIRST_TRAN_ID - 1)
        ledger._tran_ids = itertools.count(last + 1)
        return ledger
