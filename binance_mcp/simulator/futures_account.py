"""The USD-M futures account: wallet, one-way and hedge mode, leverage and brackets, margin type, margin
arithmetic, and the account endpoints (account, balance, positionRisk, leverageBracket, symbolConfig)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError, bad_symbol
from binance_mcp.simulator.feed import fmt
from binance_mcp.simulator.futures_models import (
    OPEN,
    TAKER_RATE,
    ZERO,
    AlgoOrder,
    FuturesOrder,
    Position,
    _sign,
)
from binance_mcp.simulator.income import IncomeLedger
from binance_mcp.simulator.market import MarketData
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS, Bracket, FuturesSymbol


class FuturesAccount:
    """USD-M futures state of the single simulated account: wallet, settings, positions, margin, views.

    ``FuturesExchange`` (futures.py) adds the orders; this part holds what they act on and what the
    account endpoints show."""

    def __init__(self, market: MarketData, balances: dict[str, Decimal]):
        self.market = market
        self.wallet: dict[str, Decimal] = {}
        self.set_balances(balances)
        self.dual = False
        self.leverage = {s: min(20, spec.max_leverage) for s, spec in FUTURES_SYMBOLS.items()}
        self.margin_type = {s: "CROSSED" for s in FUTURES_SYMBOLS}
        self.positions: dict[tuple[str, str], Position] = {}
        self.orders: dict[int, FuturesOrder] = {}
        self.algo: dict[int, AlgoOrder] = {}
        self.trades: list[dict] = []
        self.income = IncomeLedger()
        self._ids = itertools.count(8_000_001)
        self._algo_ids = itertools.count(300_001)
        self._trade_ids = itertools.count(90_001)
        self.update_time = 0

    def set_balances(self, balances: dict[str, Decimal], replace: bool = True) -> None:
        if replace:
            self.wallet = {}
        for asset, amount in balances.items():
            self.wallet[asset.upper()] = Decimal(amount)

    # -- lookups ----------------------------------------------------------------------------
    @staticmethod
    def spec(symbol: str | None) -> FuturesSymbol:
        if symbol is None:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        spec = FUTURES_SYMBOLS.get(symbol)
        if spec is None:
            raise bad_symbol()
        return spec

    def position(self, symbol: str, side: str) -> Position:
        return self.positions.setdefault((symbol, side), Position(symbol, side))

    def open_orders(self, symbol: str | None = None) -> list[FuturesOrder]:
        return [o for o in self.orders.values() if o.status in OPEN and (symbol is None or o.symbol == symbol)]

    def open_algo(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.algo.values() if a.status == "NEW" and (symbol is None or a.symbol == symbol)]

    @staticmethod
    def bracket_for(spec: FuturesSymbol, notional: Decimal) -> Bracket:
        for b in spec.brackets:
            if notional <= b.notional_cap:
                return b
        return spec.brackets[-1]

    @staticmethod
    def max_notional(spec: FuturesSymbol, leverage: int) -> Decimal:
        caps = [b.notional_cap for b in spec.brackets if b.initial_leverage >= leverage]
        return max(caps) if caps else spec.brackets[0].notional_cap

    # -- margin arithmetic ------------------------------------------------------------------
    def _pos_numbers(self, pos: Position) -> dict:
        spec = FUTURES_SYMBOLS[pos.symbol]
        mark = self.market.mark_price(pos.symbol)
        notional = pos.amt * mark
        upnl = (mark - pos.entry) * pos.amt if pos.amt else ZERO
        lev = self.leverage[pos.symbol]
        bracket = self.bracket_for(spec, abs(notional))
        maint = max(abs(notional) * bracket.maint_margin_ratio - bracket.cum, ZERO)
        return {"mark": mark, "notional": notional, "upnl": upnl, "im": abs(notional) / lev, "maint": maint,
                "bracket": bracket}

    def _open_order_im(self) -> Decimal:
        total = ZERO
        for o in self.open_orders():
            if not o.reduces:
                total += o.remaining * o.price / self.leverage[o.symbol]
        return total

    def totals(self) -> dict:
        wallet = self.wallet.get("USDT", ZERO)
        upnl = pim = maint = ZERO
        for pos in self.positions.values():
            if pos.amt:
                n = self._pos_numbers(pos)
                upnl += n["upnl"]
                pim += n["im"]
                maint += n["maint"]
        oim = self._open_order_im()
        added = sum((pos.margin_added for pos in self.positions.values() if pos.amt), ZERO)
        margin_balance = wallet + upnl
        available = max(margin_balance - pim - oim - added, ZERO)
        return {"wallet": wallet, "upnl": upnl, "pim": pim, "oim": oim, "maint": maint,
                "margin_balance": margin_balance, "available": available,
                "max_withdraw": max(min(available, wallet), ZERO)}

    def liquidation_price(self, pos: Position) -> Decimal:
        if not pos.amt:
            return ZERO
        n = self._pos_numbers(pos)
        b: Bracket = n["bracket"]
        size = abs(pos.amt)
        side = _sign(pos.amt)
        if self.margin_type[pos.symbol] == "ISOLATED":
            wb, other_mm, other_upnl = size * pos.entry / self.leverage[pos.symbol] + pos.margin_added, ZERO, ZERO
        else:
            wb = self.wallet.get("USDT", ZERO)
            other_mm = other_upnl = ZERO
            for other in self.positions.values():
                if other is not pos and other.amt:
                    on = self._pos_numbers(other)
                    other_mm += on["maint"]
                    other_upnl += on["upnl"]
        denom = size * b.maint_margin_ratio - side * size
        if denom == 0:
            return ZERO
        lp = (wb - other_mm + other_upnl + b.cum - side * size * pos.entry) / denom
        return max(lp, ZERO)

    # -- settings ---------------------------------------------------------------------------
    def change_leverage(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        lev = p.integer("leverage", required=True)
        assert lev is not None
        if lev < 1 or lev > spec.max_leverage:
            raise BinanceError(-4028, f"Leverage {lev} is not valid")
        cap = self.max_notional(spec, lev)
        for side in ("BOTH", "LONG", "SHORT"):
            pos = self.positions.get((spec.symbol, side))
            if pos and abs(pos.amt) * self.market.mark_price(spec.symbol) > cap:
                raise BinanceError(-2027, "Exceeded the maximum allowable position at current leverage.")
        self.leverage[spec.symbol] = lev
        return {"leverage": lev, "maxNotionalValue": str(cap), "symbol": spec.symbol}

    def change_margin_type(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        mt = p.enum("marginType", ("ISOLATED", "CROSSED"), -1102,
                    "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.", required=True)
        if self.margin_type[spec.symbol] == mt:
            raise BinanceError(-4046, "No need to change margin type.")
        if self.open_orders(spec.symbol) or self.open_algo(spec.symbol):
            raise BinanceError(-4047, "Margin type cannot be changed if there exists open orders.")
        if any(pos.amt for (s, _), pos in self.positions.items() if s == spec.symbol):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        assert mt
        self.margin_type[spec.symbol] = mt
        return {"code": 200, "msg": "success"}

    def get_dual(self) -> dict:
        return {"dualSidePosition": self.dual}

    def set_dual(self, p: Params) -> dict:
        value = p.raw("dualSidePosition")
        if value is None or value.lower() not in ("true", "false"):
            raise BinanceError(-1102, "Mandatory parameter 'dualSidePosition' was not sent, was empty/null, or "
                                      "malformed.")
        want = value.lower() == "true"
        if want == self.dual:
            raise BinanceError(-4059, "No need to change position side.")
        if self.open_orders() or self.open_algo():
            raise BinanceError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(pos.amt for pos in self.positions.values()):
            raise BinanceError(-4068, "The position side cannot be changed if there exists position.")
        self.dual = want
        return {"code": 200, "msg": "success"}

    def leverage_bracket(self, p: Params) -> dict | list:
        symbol = p.raw("symbol")
        names = [self.spec(symbol).symbol] if symbol else list(FUTURES_SYMBOLS)
        rows = [{"symbol": n, "notionalCoef": 1.0, "brackets": [
            {"bracket": b.bracket, "initialLeverage": b.initial_leverage, "notionalCap": int(b.notional_cap),
             "notionalFloor": int(b.notional_floor), "maintMarginRatio": float(b.maint_margin_ratio),
             "cum": float(b.cum)} for b in FUTURES_SYMBOLS[n].brackets]} for n in names]
        return rows[0] if symbol else rows

    def symbol_config(self, p: Params) -> list[dict]:
        symbol = p.raw("symbol")
        names = [self.spec(symbol).symbol] if symbol else list(FUTURES_SYMBOLS)
        return [{"symbol": n, "marginType": self.margin_type[n], "isAutoAddMargin": False,
                 "leverage": self.leverage[n],
                 "maxNotionalValue": str(self.max_notional(FUTURES_SYMBOLS[n], self.leverage[n]))} for n in names]

    # -- account views ----------------------------------------------------------------------
    def _sides(self) -> tuple[str, ...]:
        return ("LONG", "SHORT") if self.dual else ("BOTH",)

    def _position_row(self, pos: Position, now: int) -> dict:
        spec = FUTURES_SYMBOLS[pos.symbol]
        n = self._pos_numbers(pos)
        isolated = self.margin_type[pos.symbol] == "ISOLATED"
        iso_wallet = (abs(pos.amt) * pos.entry / self.leverage[pos.symbol] + pos.margin_added
                      if isolated and pos.amt else ZERO)
        open_im = sum((o.remaining * o.price / self.leverage[o.symbol] for o in self.open_orders(pos.symbol)
                       if o.position_side == pos.side and not o.reduces), ZERO)
        return {
            "symbol": pos.symbol, "positionSide": pos.side, "positionAmt": fmt(pos.amt, spec.quantity_precision),
            "entryPrice": fmt(pos.entry, 8), "breakEvenPrice": fmt(pos.entry * (1 + TAKER_RATE * _sign(pos.amt)), 8),
            "markPrice": fmt(n["mark"], 8), "unRealizedProfit": fmt(n["upnl"], 8),
            "liquidationPrice": fmt(self.liquidation_price(pos), 8), "isolatedMargin": fmt(iso_wallet + (n["upnl"] if isolated else ZERO), 8),
            "notional": fmt(n["notional"], 8), "marginAsset": "USDT", "isolatedWallet": fmt(iso_wallet, 8),
            "initialMargin": fmt(n["im"] + open_im, 8), "maintMargin": fmt(n["maint"], 8),
            "positionInitialMargin": fmt(n["im"], 8), "openOrderInitialMargin": fmt(open_im, 8), "adl": 0,
            "bidNotional": "0", "askNotional": "0", "updateTime": pos.update_time,
        }

    def position_risk_v3(self, p: Params, now: int) -> list[dict]:
        symbol = p.raw("symbol")
        names = [self.spec(symbol).symbol] if symbol else list(FUTURES_SYMBOLS)
        rows = []
        for n in names:
            has_orders = bool(self.open_orders(n))
            for side in self._sides():
                pos = self.position(n, side)
                if pos.amt or has_orders:
                    rows.append(self._position_row(pos, now))
        return rows

    def position_risk_v2(self, p: Params, now: int) -> list[dict]:
        symbol = p.raw("symbol")
        names = [self.spec(symbol).symbol] if symbol else list(FUTURES_SYMBOLS)
        rows = []
        for n in names:
            for side in self._sides():
                row = self._position_row(self.position(n, side), now)
                keep = {k: row[k] for k in ("symbol", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice",
                                            "unRealizedProfit", "liquidationPrice", "notional", "isolatedWallet",
                                            "isolatedMargin", "positionSide", "updateTime")}
                keep.update({"leverage": str(self.leverage[n]),
                             "maxNotionalValue": str(self.max_notional(FUTURES_SYMBOLS[n], self.leverage[n])),
                             "marginType": "isolated" if self.margin_type[n] == "ISOLATED" else "cross",
                             "isAutoAddMargin": "false"})
                rows.append(keep)
        return rows

    def _asset_rows(self, t: dict, now: int) -> list[dict]:
        rows = []
        for asset in sorted(self.wallet):
            wallet = self.wallet[asset]
            usdt = asset == "USDT"
            upnl = t["upnl"] if usdt else ZERO
            avail = t["available"] if usdt else wallet
            rows.append({
                "asset": asset, "walletBalance": fmt(wallet), "unrealizedProfit": fmt(upnl),
                "marginBalance": fmt(wallet + upnl), "maintMargin": fmt(t["maint"] if usdt else ZERO),
                "initialMargin": fmt(t["pim"] + t["oim"] if usdt else ZERO),
                "positionInitialMargin": fmt(t["pim"] if usdt else ZERO),
                "openOrderInitialMargin": fmt(t["oim"] if usdt else ZERO), "crossWalletBalance": fmt(wallet),
                "crossUnPnl": fmt(upnl), "availableBalance": fmt(avail),
                "maxWithdrawAmount": fmt(t["max_withdraw"] if usdt else wallet), "marginAvailable": True,
                "updateTime": self.update_time or now,
            })
        return rows

    def account(self, p: Params, now: int, version: int = 2) -> dict:
        t = self.totals()
        out = {
            "feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
            "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
            "totalInitialMargin": fmt(t["pim"] + t["oim"]), "totalMaintMargin": fmt(t["maint"]),
            "totalWalletBalance": fmt(t["wallet"]), "totalUnrealizedProfit": fmt(t["upnl"]),
            "totalMarginBalance": fmt(t["margin_balance"]), "totalPositionInitialMargin": fmt(t["pim"]),
            "totalOpenOrderInitialMargin": fmt(t["oim"]), "totalCrossWalletBalance": fmt(t["wallet"]),
            "totalCrossUnPnl": fmt(t["upnl"]), "availableBalance": fmt(t["available"]),
            "maxWithdrawAmount": fmt(t["max_withdraw"]), "assets": self._asset_rows(t, now),
        }
        positions = []
        for n, spec in FUTURES_SYMBOLS.items():
            for side in self._sides():
                pos = self.position(n, side)
                if version == 3 and not pos.amt:
                    continue
                num = self._pos_numbers(pos)
                positions.append({
                    "symbol": n, "initialMargin": fmt(num["im"]), "maintMargin": fmt(num["maint"]),
                    "unrealizedProfit": fmt(num["upnl"]), "positionInitialMargin": fmt(num["im"]),
                    "openOrderInitialMargin": "0", "leverage": str(self.leverage[n]),
                    "isolated": self.margin_type[n] == "ISOLATED", "entryPrice": fmt(pos.entry),
                    "breakEvenPrice": fmt(pos.entry), "maxNotional": str(self.max_notional(spec, self.leverage[n])),
                    "bidNotional": "0", "askNotional": "0", "positionSide": side,
                    "positionAmt": fmt(pos.amt, spec.quantity_precision), "updateTime": pos.update_time,
                })
        out["positions"] = positions
        return out

    def balance(self, p: Params, now: int) -> list[dict]:
        t = self.totals()
        return [{
            "accountAlias": "SgsR", "asset": r["asset"], "balance": r["walletBalance"],
            "crossWalletBalance": r["crossWalletBalance"], "crossUnPnl": r["crossUnPnl"],
            "availableBalance": r["availableBalance"], "maxWithdrawAmount": r["maxWithdrawAmount"],
            "marginAvailable": True, "updateTime": r["updateTime"],
        } for r in self._asset_rows(t, now)]
