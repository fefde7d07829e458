"""Configuration from the environment (each variable also a flag of ``binance-mcp serve``).

Secrets are ``SecretStr`` and leave this module only through the exchange adapter; ``redact`` is the
one helper that scrubs them from any text (logs, audit, errors, ``--show-config``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import SecretStr

from binance_mcp.errors import ConfigError
from binance_mcp.paths import default_state_dir

Mode = Literal["paper", "testnet", "live", "custom"]

LIVE_SPOT_URL = "https://api.binance.com/api"
LIVE_FUTURES_URL = "https://fapi.binance.com/fapi"
TESTNET_SPOT_URL = "https://testnet.binance.vision/api"
TESTNET_FUTURES_URL = "https://testnet.binancefuture.com/fapi"

# name -> (meaning, default shown in help). The single source for --help and docs/configuration.md.
ENVIRONMENT = {
    "BINANCE_API_KEY": ("API key (BINANCE_API_KEY); without keys the server runs in paper mode", "none"),
    "BINANCE_API_SECRET": ("API secret (BINANCE_SECRET_KEY is read too)", "none"),
    "BINANCE_MCP_MODE": ("paper, testnet or live; required when keys are set (no silent live trading)",
                         "paper without keys"),
    "BINANCE_TESTNET": ("true means BINANCE_MCP_MODE=testnet (as other Binance servers use it)", "false"),
    "BINANCE_MCP_BASE_URL": ("any Binance-compatible base URL, e.g. a `binance-mcp simulator` you run yourself; "
                             "spot at <url>/api, futures at <url>/fapi", "none"),
    "BINANCE_MCP_POLICY": ("policy file (YAML or JSON)", "built-in read-only"),
    "BINANCE_MCP_STATE_DIR": ("directory for the state database, audit log and approvals",
                              "~/.local/state/binance-mcp"),
    "BINANCE_MCP_PAPER_BALANCES": ("paper account start, e.g. USDT=10000,BTC=0.5 (spot and futures wallet)",
                                   "USDT=10000"),
    "BINANCE_MCP_PAPER_TICK_SECONDS": ("seconds between price steps of the paper exchange; 0 freezes prices", "1"),
    "BINANCE_MCP_APPROVAL_TTL": ("seconds an out-of-band approval request stays valid", "600"),
    "BINANCE_MCP_APPROVAL_TIMEOUT": ("seconds to wait for an answer to an elicitation approval prompt", "120"),
    "BINANCE_MCP_TIMEOUT": ("seconds before an exchange request is abandoned", "10"),
    "BINANCE_MCP_LOG_LEVEL": ("log level on stderr: DEBUG, INFO, WARNING, ERROR", "WARNING"),
}


def _env(environ: dict[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value is not None and value.strip() else None


@dataclass
class Settings:
    mode: Mode = "paper"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    base_url: str | None = None
    policy: Path | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    paper_balances: dict[str, Decimal] = field(default_factory=lambda: {"USDT": Decimal("10000")})
    timeout: float = 10.0
    log_level: str = "WARNING"
    paper_tick_seconds: float = 1.0
    approval_ttl: float = 600.0
    approval_timeout: float = 120.0

    @property
    def spot_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/") + "/api"
        return TESTNET_SPOT_URL if self.mode == "testnet" else LIVE_SPOT_URL

    @property
    def futures_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/") + "/fapi"
        return TESTNET_FUTURES_URL if self.mode == "testnet" else LIVE_FUTURES_URL

    @property
    def exchange_host(self) -> str:
        return urlparse(self.spot_url).netloc

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.api_key, self.api_secret) if s is not None and s.get_secret_value()]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def public_view(self) -> dict:
        """What ``--show-config`` prints: every setting, secrets masked."""
        return {
            "mode": self.mode, "api_key": _mask(self.api_key), "api_secret": _mask(self.api_secret),
            "base_url": self.base_url,
            "spot_url": "embedded simulator on 127.0.0.1 (started on first use)" if self.mode == "paper"
            else self.spot_url,
            "futures_url": "embedded simulator on 127.0.0.1 (started on first use)" if self.mode == "paper"
            else self.futures_url,
            "policy": str(self.policy) if self.policy else "built-in read-only",
            "state_dir": str(self.state_dir),
            "paper_balances": {k: str(v) for k, v in self.paper_balances.items()},
            "timeout": self.timeout, "log_level": self.log_level, "paper_tick_seconds": self.paper_tick_seconds,
            "approval_ttl": self.approval_ttl, "approval_timeout": self.approval_timeout,
        }


def _mask(secret: SecretStr | None) -> str | None:
    if secret is None:
        return None
    value = secret.get_secret_value()
    return "****" + value[-4:] if len(value) > 12 else "****"


def redact(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of a secret (and its first 12 characters, in case it was cut) with ****."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
            if len(secret) > 16:
                text = text.replace(secret[:12], "****")
    return text


def load_settings(environ: dict[str, str] | None = None, **flags: object) -> Settings:
    """Settings from the environment, with flags (not None) winning. Raises ConfigError with a remedy."""
    from binance_mcp.simulator.config import parse_balances

    env = dict(os.environ if environ is None else environ)

    def pick(flag: str, name: str) -> str | None:
        value = flags.get(flag)
        return str(value) if value is not None else _env(env, name)

    key = pick("api_key", "BINANCE_API_KEY")
    secret = pick("api_secret", "BINANCE_API_SECRET") or _env(env, "BINANCE_SECRET_KEY")
    mode = pick("mode", "BINANCE_MCP_MODE")
    testnet = (_env(env, "BINANCE_TESTNET") or "").lower() in ("1", "true", "yes")
    base_url = pick("base_url", "BINANCE_MCP_BASE_URL")
    if mode is not None:
        mode = mode.lower()
        if mode not in ("paper", "testnet", "live"):
            raise ConfigError(f"BINANCE_MCP_MODE={mode!r} is not valid: use paper, testnet or live.")
    if testnet:
        if mode not in (None, "testnet"):
            raise ConfigError(f"BINANCE_TESTNET=true contradicts BINANCE_MCP_MODE={mode}: remove one of them.")
        mode = "testnet"
    if bool(key) != bool(secret):
        raise ConfigError("Set both BINANCE_API_KEY and BINANCE_API_SECRET, or neither (paper mode).")
    has_keys = bool(key and secret)
    if base_url is not None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"BINANCE_MCP_BASE_URL={base_url!r} is not an http(s) URL such as "
                              "http://127.0.0.1:8765.")
        if not has_keys:
            raise ConfigError("BINANCE_MCP_BASE_URL needs BINANCE_API_KEY and BINANCE_API_SECRET (for a "
                              "`binance-mcp simulator`, the key and secret it printed at start-up).")
        if mode == "paper":
            raise ConfigError("BINANCE_MCP_BASE_URL cannot be combined with BINANCE_MCP_MODE=paper: paper mode "
                              "starts its own simulator. Remove one of them.")
        resolved: str = mode or "custom"
    elif has_keys:
        if mode is None:
            raise ConfigError(
                "API keys are set but no mode is chosen. Set BINANCE_MCP_MODE=testnet to trade on Binance's "
                "testnet, or BINANCE_MCP_MODE=live to trade with real money (or remove the keys for paper mode)."
            )
        if mode == "paper":
            raise ConfigError("BINANCE_MCP_MODE=paper runs on the embedded simulator and takes no API keys: "
                              "remove BINANCE_API_KEY and BINANCE_API_SECRET, or choose testnet or live.")
        resolved = mode
    else:
        if mode in ("testnet", "live"):
            raise ConfigError(f"BINANCE_MCP_MODE={mode} needs BINANCE_API_KEY and BINANCE_API_SECRET.")
        resolved = "paper"
    try:
        balances = parse_balances(pick("paper_balances", "BINANCE_MCP_PAPER_BALANCES") or "USDT=10000")
    except ValueError as exc:
        raise ConfigError(f"BINANCE_MCP_PAPER_BALANCES: {exc}") from exc
    raw_timeout = pick("timeout", "BINANCE_MCP_TIMEOUT") or "10"
    try:
        timeout = float(raw_timeout)
    except ValueError as exc:
        raise ConfigError(f"BINANCE_MCP_TIMEOUT={raw_timeout!r} is not a number of seconds.") from exc
    if not 0.1 <= timeout <= 120:
        raise ConfigError("BINANCE_MCP_TIMEOUT must be between 0.1 and 120 seconds.")
    raw_tick = pick("paper_tick_seconds", "BINANCE_MCP_PAPER_TICK_SECONDS") or "1"
    try:
        tick = float(raw_tick)
    except ValueError as exc:
        raise ConfigError(f"BINANCE_MCP_PAPER_TICK_SECONDS={raw_tick!r} is not a number of seconds.") from exc
    if tick < 0:
        raise ConfigError("BINANCE_MCP_PAPER_TICK_SECONDS must be 0 (frozen prices) or more.")
    approval_ttl = _seconds(pick("approval_ttl", "BINANCE_MCP_APPROVAL_TTL") or "600", "BINANCE_MCP_APPROVAL_TTL",
                            1, 86400)
    approval_timeout = _seconds(pick("approval_timeout", "BINANCE_MCP_APPROVAL_TIMEOUT") or "120",
                                "BINANCE_MCP_APPROVAL_TIMEOUT", 1, 3600)
    policy = pick("policy", "BINANCE_MCP_POLICY")
    state_dir = pick("state_dir", "BINANCE_MCP_STATE_DIR")
    log_level = (pick("log_level", "BINANCE_MCP_LOG_LEVEL") or "WARNING").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("BINANCE_MCP_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
    return Settings(
        mode=resolved,  # type: ignore[arg-type]
        api_key=SecretStr(key) if key else None,
        api_secret=SecretStr(secret) if secret else None,
        base_url=base_url,
        policy=Path(policy).expanduser() if policy else None,
        state_dir=Path(state_dir).expanduser() if state_dir else default_state_dir(),
        paper_balances=balances,
        timeout=timeout,
        log_level=log_level,
        paper_tick_seconds=tick,
        approval_ttl=approval_ttl,
        approval_timeout=approval_timeout,
    )


def _seconds(raw: str, name: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds.") from exc
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds.")
    return value
