"""Binance error replies: always JSON ``{"code": <negative int>, "msg": "..."}`` with Binance's HTTP status."""

from __future__ import annotations


class BinanceError(Exception):
    """An error the simulator answers with, exactly as Binance would."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def illegal_chars(name: str) -> BinanceError:
    return BinanceError(
        -1100,
        f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
    )


def bad_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def order_rejected(msg: str) -> BinanceError:
    return BinanceError(-2010, msg)


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
