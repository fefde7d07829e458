"""Simulator configuration: one dataclass, with documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

# Documented defaults: the credentials the simulator accepts when none are given.
DEFAULT_API_KEY = "SimulatorApiKey0000000000000000000000000000000000000000000000001"
DEFAULT_API_SECRET = "SimulatorSecret000000000000000000000000000000000000000000000001"
DEFAULT_SPOT_BALANCES = {"USDT": Decimal("10000")}
DEFAULT_FUTURES_BALANCES = {"USDT": Decimal("10000")}
# What GET /sapi/v1/account/apiRestrictions answers by default (Binance's field names): a key that reads and trades
# spot and futures, cannot withdraw or transfer, and is restricted to trusted IPs.
DEFAULT_API_RESTRICTIONS: dict[str, bool | int] = {
    "ipRestrict": True, "createTime": 1700000000000, "enableReading": True, "enableSpotAndMarginTrading": True,
    "enableFutures": True, "enableMargin": False, "enableVanillaOptions": False,
    "enablePortfolioMarginTrading": False, "enableWithdrawals": False, "enableInternalTransfer": False,
    "permitsUniversalTransfer": False, "tradingAuthorityExpirationTime": 0,
}
ABSENT = "absent"  # --api-restrictions absent: the endpoint answers 404, as on Binance's testnets


def parse_api_restrictions(text: str) -> dict[str, bool | int] | None:
    """``--api-restrictions``: a JSON object merged over DEFAULT_API_RESTRICTIONS (Binance's field names), or
    ``absent`` (None: the endpoint does not exist, as on the testnets)."""
    import json

    if text.strip().lower() == ABSENT:
        return None
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--api-restrictions is not JSON ({exc}); write e.g. "
                         "'{\"enableWithdrawals\": true, \"ipRestrict\": false}' or absent") from None
    if not isinstance(given, dict):
        raise ValueError("--api-restrictions must be a JSON object such as '{\"enableWithdrawals\": true}'")
    out = dict(DEFAULT_API_RESTRICTIONS)
    for key, value in given.items():
        if key not in DEFAULT_API_RESTRICTIONS:
            raise ValueError(f"--api-restrictions: unknown field {key!r}; Binance's fields are "
                             f"{', '.join(sorted(DEFAULT_API_RESTRICTIONS))}")
        want = int if key in ("createTime", "tradingAuthorityExpirationTime") else bool
        if type(value) is not want:
            raise ValueError(f"--api-restrictions: {key} must be {'an integer' if want is int else 'true or false'}")
        out[key] = value
    return out


def parse_balances(text: str) -> dict[str, Decimal]:
    """Parse ``USDT=10000,BTC=0.5`` into ``{"USDT": Decimal("10000"), "BTC": Decimal("0.5")}``."""
    out: dict[str, Decimal] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        asset, sep, amount = part.partition("=")
        asset = asset.strip().upper()
        if not sep or not asset.isalnum():
            raise ValueError(f"balance {part!r} is not ASSET=AMOUNT (for example USDT=10000,BTC=0.5)")
        try:
            value = Decimal(amount.strip())
        except Exception as exc:  # decimal.InvalidOperation
            raise ValueError(f"balance {part!r}: {amount.strip()!r} is not a number") from exc
        if not value.is_finite() or value < 0:
            raise ValueError(f"balance {part!r}: the amount must be a finite number >= 0")
        out[asset] = value
    return out


@dataclass
class SimConfig:
    """How a simulator instance behaves.

    ``tick_seconds``: the price feed takes one random-walk step every this many seconds of wall
    time; 0 freezes it (tests then move prices with the ``/_sim/`` controls).
    ``ed25519_public_key``, ``rsa_public_key``: PEM public keys; each gets an API key of its own (printed at
    start-up, ``Simulator.signers``) whose requests are checked with it. The HMAC key keeps working beside them.
    """

    seed: int = 42
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    # PEM public keys registered as API keys of their own (signatures.py): Ed25519 and RSA, as Binance has them
    ed25519_public_key: bytes | None = None
    rsa_public_key: bytes | None = None
    spot_balances: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_SPOT_BALANCES))
    futures_balances: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_FUTURES_BALANCES))
    controls: bool = False
    tick_seconds: float = 1.0
    # Rate limits (per simulator, as Binance counts them per IP / account).
    spot_weight_per_minute: int = 6000
    futures_weight_per_minute: int = 2400
    spot_orders_per_10s: int = 100
    spot_orders_per_day: int = 200000
    futures_orders_per_10s: int = 300
    futures_orders_per_minute: int = 1200
    ban_after_429s: int = 3
    ban_seconds: int = 120
    # GET /sapi/v1/account/apiRestrictions: what the key may do (None: the endpoint answers 404, as on testnets)
    api_restrictions: dict | None = field(default_factory=lambda: dict(DEFAULT_API_RESTRICTIONS))
