"""Parameter parsing with Binance's error codes: decimals, integers, enums, booleans, client ids."""

from __future__ import annotations

import re
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError, illegal_chars, mandatory, not_required

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
FUTURES_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")


class Params:
    """The merged request parameters (query string wins over body), read with Binance's checks."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def __contains__(self, name: str) -> bool:
        return name in self.values and self.values[name] != ""

    def raw(self, name: str) -> str | None:
        v = self.values.get(name)
        return None if v is None or v == "" else v

    def require(self, name: str) -> str:
        v = self.raw(name)
        if v is None:
            raise mandatory(name)
        return v

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        v = self.require(name) if required else self.raw(name)
        if v is None:
            return None
        if not DECIMAL_RE.match(v):
            raise illegal_chars(name)
        return Decimal(v)

    def integer(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        v = self.require(name) if required else self.raw(name)
        if v is None:
            return default
        if not re.fullmatch(r"-?[0-9]{1,20}", v):
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
        return int(v)

    def boolean(self, name: str, default: bool = False) -> bool:
        v = self.raw(name)
        if v is None:
            return default
        if v.lower() not in ("true", "false"):
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is 'true|false'.")
        return v.lower() == "true"

    def enum(self, name: str, allowed: tuple[str, ...], code: int, msg: str, required: bool = False) -> str | None:
        v = self.require(name) if required else self.raw(name)
        if v is None:
            return None
        if v not in allowed:
            raise BinanceError(code, msg)
        return v

    def forbid(self, *names: str) -> None:
        for n in names:
            if n in self:
                raise not_required(n)

    def limit(self, default: int, maximum: int, name: str = "limit") -> int:
        v = self.integer(name, default=default)
        assert v is not None
        if v < 1 or v > maximum:
            raise BinanceError(-1100 if v < 1 else -1130,
                               f"Illegal characters found in parameter '{name}'; legal range is '1' to '{maximum}'."
                               if v < 1 else f"Data sent for parameter '{name}' is not valid.")
        return v


def places(value: Decimal) -> int:
    exp = value.as_tuple().exponent
    return max(0, -int(exp))  # type: ignore[arg-type]


def is_multiple(value: Decimal, step: Decimal, base: Decimal = Decimal(0)) -> bool:
    if step == 0:
        return True
    return (value - base) % step == 0
