"""Configuration from the environment (each variable but the keys also a flag of ``binance-mcp serve``).

Every setting is declared once, below, as a field of ``Settings``: type, default, bounds, environment variable (and
alias), description, flag, and the message a bad value gets. The environment table (``ENVIRONMENT``), the serve
flags (``SERVE_FLAGS``) and their ``--help``, ``--show-config`` (``public_view``), the README's table and
docs/configuration.md all derive from that declaration.

``load_settings`` reads it in two passes: the shape pass (pydantic-settings: the environment and the flags, flags
winning; each value parsed and checked on its own), then the cross-field rules, small named checks that resolve the
mode. Either way a bad input stops start-up with a ``ConfigError`` that says what to do, never a pydantic error.

Secrets are ``SecretStr`` and leave this module only through the exchange adapter; ``redact`` is the one helper that
scrubs them from any text (logs, audit, errors, ``--show-config``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from binance_mcp.errors import ConfigError
from binance_mcp.keys import PrivateKey, resolve
from binance_mcp.paths import BUILTIN_POLICIES, default_state_dir
from binance_mcp.setting_fields import _bounds, _choices, _extra, _meaning, _shown, env_names

Mode = Literal["paper", "testnet", "live", "custom"]  # custom: a base URL and no mode; never an input

LIVE_SPOT_URL = "https://api.binance.com/api"
LIVE_FUTURES_URL = "https://fapi.binance.com/fapi"
TESTNET_SPOT_URL = "https://testnet.binance.vision/api"
TESTNET_FUTURES_URL = "https://testnet.binancefuture.com/fapi"
PAPER_URL = "embedded simulator on 127.0.0.1 (started on first use)"
# The live paper feed's default upstream: Binance's public market data, spot and USD-M on their own hosts.
PAPER_UPSTREAM_SPOT_URL = "https://api.binance.com/api"
PAPER_UPSTREAM_FUTURES_URL = "https://fapi.binance.com/fapi"

SECONDS = "{env}={value!r} is not a number of seconds."


def setting(default: Any = None, *, env: str, description: str, also: tuple[str, ...] = (), flag: bool = True,
            shown: str | None = None, invalid: str | None = None, bounds: str | None = None, **field: Any) -> Any:
    """One setting: ``env`` (then ``also``) is its variable; ``flag`` makes it a ``serve`` flag; ``shown`` is its
    default as the docs say it (derived from the default when absent; also what ``--show-config`` prints for an unset
    value); ``invalid`` is the message of a value that does not parse ({env}, {value}, {choices}, {error}); ``bounds``
    says what ``ge``/``le`` allow (derived when absent)."""
    if "default_factory" not in field:
        field["default"] = default
    extra = {"flag": flag, "shown": shown, "invalid": invalid, "bounds": bounds}
    return Field(validation_alias=AliasChoices(env, *also), description=description,
                 json_schema_extra={k: v for k, v in extra.items() if v is not None}, **field)


class Settings(BaseSettings):
    """The settings. ``load_settings`` builds them from the environment and flags; ``Settings(**fields)`` takes only
    its arguments (for tests), by field name or variable name, with neither the environment nor the mode rules."""

    model_config = SettingsConfigDict(case_sensitive=True, populate_by_name=True, extra="ignore",
                                      enable_decoding=False, validate_default=False)

    api_key: SecretStr | None = setting(
        env="BINANCE_API_KEY", flag=False, description="API key; without keys the server runs in paper mode")
    api_secret: SecretStr | None = setting(
        env="BINANCE_API_SECRET", also=("BINANCE_SECRET_KEY",), flag=False,
        description="API secret of an HMAC key; instead of it: BINANCE_API_SECRET_FILE, the OS keychain "
                    "(`binance-mcp keys store`) or, for an Ed25519 or RSA key, BINANCE_API_PRIVATE_KEY_FILE")
    api_secret_file: Path | None = setting(
        env="BINANCE_API_SECRET_FILE", flag=False,
        description="file holding the API secret alone, readable by its owner only (chmod 600)")
    private_key_file: Path | None = setting(
        env="BINANCE_API_PRIVATE_KEY_FILE", flag=False,
        description="PEM file of the Ed25519 (recommended by Binance) or RSA private key of BINANCE_API_KEY, "
                    "readable by its owner only (chmod 600); takes the place of the secret")
    private_key_passphrase: SecretStr | None = setting(
        env="BINANCE_API_PRIVATE_KEY_PASSPHRASE", flag=False,
        description="passphrase of an encrypted BINANCE_API_PRIVATE_KEY_FILE")
    mode: Literal["paper", "testnet", "live"] = setting(  # load_settings resolves it (custom included)
        "paper", env="BINANCE_MCP_MODE", shown="paper without keys",
        description="paper, testnet or live; required when keys are set (no silent live trading)",
        invalid="{env}={value!r} is not valid: use {choices}.")
    testnet: bool = setting(False, env="BINANCE_TESTNET", flag=False,
                            description="true means BINANCE_MCP_MODE=testnet (as other Binance servers use it)")
    base_url: str | None = setting(
        env="BINANCE_MCP_BASE_URL",
        description="any Binance-compatible base URL, e.g. a `binance-mcp simulator` you run yourself; "
                    "spot at <url>/api, futures at <url>/fapi",
        invalid="{env}={value!r} is not an http(s) URL such as http://127.0.0.1:8765.")
    policy: Path | None = setting(
        env="BINANCE_MCP_POLICY", shown="built-in read-only",
        description="policy file (YAML or JSON), or the name of a built-in policy: read-only, spot-trader, "
                    "futures-reduce-only or policylayer-binance")
    state_dir: Path = setting(default_factory=default_state_dir, env="BINANCE_MCP_STATE_DIR",
                              shown="~/.local/state/binance-mcp",
                              description="directory for the state database, audit log and approvals")
    state_url: str | None = setting(
        env="BINANCE_MCP_STATE_URL", shown="none: SQLite in the state directory",
        description="PostgreSQL URL (postgresql://user@host:5432/db) of a state store shared by several servers "
                    "trading one account; keep its password in ~/.pgpass or PGPASSWORD, not in the URL",
        invalid="{env}={value!r} is not a postgresql:// URL such as postgresql://binance@db:5432/binance_mcp.")
    paper_balances: dict[str, Decimal] = setting(
        default_factory=lambda: {"USDT": Decimal("10000")}, env="BINANCE_MCP_PAPER_BALANCES",
        description="paper account start, e.g. USDT=10000,BTC=0.5 (spot and futures wallet)", invalid="{env}: {error}")
    timeout: float = setting(10.0, env="BINANCE_MCP_TIMEOUT", ge=0.1, le=120, invalid=SECONDS,
                             description="seconds before an exchange request is abandoned")
    paper_tick_seconds: float = setting(
        1.0, env="BINANCE_MCP_PAPER_TICK_SECONDS", ge=0, bounds="0 (frozen prices) or more", invalid=SECONDS,
        description="seconds between price steps of the paper exchange; 0 freezes prices")
    paper_feed: Literal["live", "synthetic"] = setting(
        "synthetic", env="BINANCE_MCP_PAPER_FEED",
        description="prices of a new paper account: live (Binance's public market data, no key) or synthetic (a "
                    "random walk, nothing leaves the machine); an account keeps the feed it was created with",
        invalid="{env}={value!r} is not valid: use {choices}.")
    paper_upstream: str | None = setting(
        env="BINANCE_MCP_PAPER_UPSTREAM", shown="api.binance.com and fapi.binance.com",
        description="where the live paper feed reads public market data: a base URL with spot at <url>/api and "
                    "futures at <url>/fapi (e.g. a `binance-mcp simulator`); unset, Binance's public spot and "
                    "futures hosts",
        invalid="{env}={value!r} is not an http(s) URL such as http://127.0.0.1:8765.")
    approval_ttl: float = setting(600.0, env="BINANCE_MCP_APPROVAL_TTL", ge=1, le=86400, invalid=SECONDS,
                                  description="seconds an out-of-band approval request stays valid")
    approval_timeout: float = setting(120.0, env="BINANCE_MCP_APPROVAL_TIMEOUT", ge=1, le=3600, invalid=SECONDS,
                                      description="seconds to wait for an answer to an approval prompt in the client, or "
                                                  "for the console's decision once its page is open")
    console_url: str | None = setting(
        env="BINANCE_MCP_CONSOLE_URL", shown="the service's own URL + /console; over stdio http://127.0.0.1:8766/console",
        description="the console that approval links point at (`{console_url}/approvals/<id>`): set it when humans "
                    "reach the console at another address (a TLS proxy, another host)",
        invalid="{env}={value!r} is not an http(s) URL such as http://127.0.0.1:8766/console.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        "WARNING", env="BINANCE_MCP_LOG_LEVEL", description="log level on stderr: DEBUG, INFO, WARNING, ERROR",
        invalid="{env} must be {choices}.")

    # -- the shape of single values ---------------------------------------------------------------------------------
    _private_key: PrivateKey | None = PrivateAttr(default=None)
    _secret_source: str | None = PrivateAttr(default=None)

    @field_validator("api_key", "api_secret", "api_secret_file", "private_key_file", "private_key_passphrase",
                     "policy", "state_dir", "state_url", "paper_balances", "paper_feed", "timeout",
                     "paper_tick_seconds", "approval_ttl", "approval_timeout", "console_url",
                     "log_level", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any) -> Any:
        if value == "":  # an empty flag (an empty variable never gets here: it counts as unset)
            raise PydanticUseDefault
        return value

    @field_validator("mode", "paper_feed", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("testnet", mode="before")
    @classmethod
    def _true(cls, value: Any) -> bool:
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")

    @field_validator("base_url", "paper_upstream", "console_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError("not an http(s) URL")
        return value

    @field_validator("state_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("postgresql://", "postgres://")):
            raise ValueError("not a postgresql:// URL")
        return value

    @field_validator("paper_balances", mode="before")
    @classmethod
    def _balances(cls, value: Any) -> Any:
        if isinstance(value, str) and value:  # "" (an empty flag) is the default, as _empty_means_default says
            from binance_mcp.simulator.config import parse_balances

            return parse_balances(value)  # its ValueError is the message
        return value

    @field_validator("policy", "state_dir", "api_secret_file", "private_key_file")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("policy", mode="before")
    @classmethod
    def _name_or_path(cls, value: Any) -> Any:
        """A built-in policy's name stays a bare name; anything else is a path, made absolute (``./spot-trader`` is
        a file, and the server finds it again whatever its working directory)."""
        if isinstance(value, (str, Path)) and str(value) and str(value) not in BUILTIN_POLICIES:
            return Path(value).expanduser().absolute()
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments (the flags) first, then the environment load_settings was given; no .env file, no secrets dir."""
        if _ENVIRON.get() is None:
            return (init_settings,)
        return init_settings, _Environment(settings_cls)

    # -- derived ------------------------------------------------------------------------------------------------------
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
    def paper_upstream_urls(self) -> tuple[str, str]:
        """The live paper feed's spot and futures URLs: ``<url>/api`` and ``<url>/fapi`` of BINANCE_MCP_PAPER_UPSTREAM,
        else Binance's public hosts (spot and futures are two hosts there)."""
        if self.paper_upstream:
            base = self.paper_upstream.rstrip("/")
            return base + "/api", base + "/fapi"
        return PAPER_UPSTREAM_SPOT_URL, PAPER_UPSTREAM_FUTURES_URL

    @property
    def exchange_host(self) -> str:
        return urlparse(self.spot_url).netloc

    @property
    def private_key(self) -> PrivateKey | None:
        """The Ed25519 or RSA key that signs instead of a secret (load_settings reads and checks the file)."""
        return self._private_key

    @property
    def key_type(self) -> str | None:
        """hmac, ed25519 or rsa: how requests are signed; None without keys."""
        if self._private_key is not None:
            return self._private_key.kind
        return "hmac" if self.api_key is not None and self.api_secret is not None else None

    @property
    def secret_source(self) -> str | None:
        """Where the secret (or key) was found: environment, file, OS keychain or private key file."""
        if self._secret_source is None and self.key_type == "hmac":
            return "environment"
        return self._secret_source

    def secrets(self) -> list[str]:
        values = [s.get_secret_value() for s in (self.api_key, self.api_secret, self.private_key_passphrase)
                  if s is not None and s.get_secret_value()]
        if self.state_url:  # a password in the state URL (better kept in ~/.pgpass) is a secret too
            from binance_mcp.store.postgres import password_of

            values += [p for p in (password_of(self.state_url),) if p]
        return values + (self._private_key.secrets() if self._private_key is not None else [])

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def public_view(self) -> dict:
        """What ``--show-config`` prints: every declared setting (secrets masked), plus the URLs in use."""
        view: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):  # a passphrase shows nothing of itself, not even its end
                value = "****" if name == "private_key_passphrase" else _mask(value)
            elif isinstance(value, Path):
                value = str(value)
            elif name == "state_url" and value is not None:
                from binance_mcp.store.postgres import describe

                value = describe(value)  # never its password
            elif isinstance(value, dict):
                value = {k: str(v) for k, v in value.items()}
            elif value is None:
                value = _extra(field).get("shown")
            view[name] = value
            if name == "private_key_passphrase":
                view["key_type"], view["secret_source"] = self.key_type, self.secret_source
            if name == "base_url":
                view["spot_url"] = PAPER_URL if self.mode == "paper" else self.spot_url
                view["futures_url"] = PAPER_URL if self.mode == "paper" else self.futures_url
        return view


# -- the environment --------------------------------------------------------------------------------------------------
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("binance_mcp_environ", default=None)


# A ${user_config.KEY} placeholder left as it is: Claude Desktop passes it for an MCP Bundle field left blank.
UNEXPANDED = re.compile(r"\$\{user_config\.[^}]*\}")


VERBATIM = {"BINANCE_API_PRIVATE_KEY_PASSPHRASE"}  # a passphrase may begin or end with a space


def _given(value: str | None) -> bool:
    return bool(value and value.strip() and not UNEXPANDED.fullmatch(value.strip()))


class _Environment(EnvSettingsSource):
    """The environment load_settings was given (os.environ by default): values stripped; empty ones, and an
    unexpanded ``${user_config.KEY}`` of an MCP Bundle, unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get() or {}
        return {name: value if name in VERBATIM else value.strip() for name, value in environ.items() if _given(value)}


# variable -> (meaning, default as the docs say it), in declaration order: --help, the README and docs/configuration.md
ENVIRONMENT: dict[str, tuple[str, str]] = {
    env_names(f)[0]: (_meaning(f), _shown(f)) for f in Settings.model_fields.values()}
# flag of `binance-mcp serve` -> (settings field, variable); API keys are never flags (flags show in process lists)
SERVE_FLAGS: dict[str, tuple[str, str]] = {
    "--" + name.replace("_", "-"): (name, env_names(f)[0])
    for name, f in Settings.model_fields.items() if _extra(f).get("flag")}


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


# -- loading: the shape pass, then the cross-field rules --------------------------------------------------------------
RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def load_settings(environ: Mapping[str, str] | None = None, **flags: object) -> Settings:
    """Settings from the environment, with flags (not None) winning. Raises ConfigError with a remedy.

    When several things are wrong the first in this order is reported: the mode, the testnet switch, the
    credentials (key and secret, secret file, private key file, keychain), the base URL, the mode rules, then every
    other setting in declaration order."""
    shaped, problems = _shape(os.environ if environ is None else environ, flags)

    def shape_of(*names: str) -> None:
        for name in names:
            if name in problems:
                raise ConfigError(problems[name])

    shape_of("mode")
    chosen = _testnet_agrees_with_mode(shaped)
    shape_of("api_key", "api_secret", "api_secret_file", "private_key_file", "private_key_passphrase")
    shaped = _credentials(shaped)
    shape_of("base_url")
    resolved = _mode_for_keys_and_url(shaped, chosen)
    shape_of(*Settings.model_fields)
    return shaped.model_copy(update={"mode": resolved, "testnet": resolved == "testnet"})


def _shape(environ: Mapping[str, str], flags: Mapping[str, object]) -> tuple[Settings, dict[str, str]]:
    """Settings built from the flags and the environment, and a message for each setting whose value is wrong (those
    are then left at their defaults, so that the rules can still look at the others)."""
    fields = Settings.model_fields
    given = {env_names(fields[name])[0]: str(value) for name, value in flags.items()
             if value is not None and name in fields}
    try:
        return _build(environ, given), {}
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            name = _field_of(error)
            if name is None:  # pragma: no cover - every input is a declared setting (extra="ignore")
                raise ConfigError("the settings cannot be read (an undeclared setting)") from None
            problems.setdefault(name, _message(fields[name], error))
    dropped = {env for name in problems for env in env_names(fields[name])}
    return (_build({k: v for k, v in environ.items() if k not in dropped},
                   {k: v for k, v in given.items() if k not in dropped}), problems)


def _build(environ: Mapping[str, str], given: dict[str, str]) -> Settings:
    token = _ENVIRON.set(environ)
    try:
        return Settings(**given)
    finally:
        _ENVIRON.reset(token)


def _field_of(error: Any) -> str | None:
    loc = error.get("loc") or ()
    key = str(loc[0]) if loc else ""
    for name, field in Settings.model_fields.items():
        if key == name or key in env_names(field):
            return name
    return None


def _message(field: FieldInfo, error: Any) -> str:
    """The message of a bad value, from its declaration."""
    env = env_names(field)[0]
    if error["type"] in RANGE_ERRORS and _bounds(field):
        return f"{env} must be {_bounds(field)}."
    template = _extra(field).get("invalid") or "{env}={value!r} is not valid."
    ctx_error = (error.get("ctx") or {}).get("error")
    return template.format(env=env, value=error.get("input"), choices=_choices(field),
                           error=str(ctx_error) if ctx_error is not None else error["msg"])


def _testnet_agrees_with_mode(s: Settings) -> str | None:
    """The mode chosen (None: none), BINANCE_TESTNET=true meaning testnet."""
    chosen = s.mode if "mode" in s.model_fields_set else None
    if s.testnet:
        if chosen not in (None, "testnet"):
            raise ConfigError(f"BINANCE_TESTNET=true contradicts BINANCE_MCP_MODE={chosen}: remove one of them.")
        return "testnet"
    return chosen


def _credentials(s: Settings) -> Settings:
    """The API key and what signs for it (keys.resolve: a secret or a private key file, never two of them)."""
    secret = s.api_secret.get_secret_value() if s.api_secret is not None else None
    found = resolve(s.api_key.get_secret_value() if s.api_key is not None else None, secret, s.api_secret_file,
                    s.private_key_file,
                    s.private_key_passphrase.get_secret_value() if s.private_key_passphrase is not None else None)
    if found is None:
        return s
    out = s.model_copy(update={"api_secret": SecretStr(found.secret)} if found.secret is not None else {})
    out._private_key, out._secret_source = found.private_key, found.source
    return out


def _mode_for_keys_and_url(s: Settings, chosen: str | None) -> str:
    """Keys need a mode (no silent live trading); a base URL needs keys and no paper mode; no keys means paper."""
    has_keys = s.key_type is not None
    if s.base_url is not None:
        if not has_keys:
            raise ConfigError("BINANCE_MCP_BASE_URL needs BINANCE_API_KEY and BINANCE_API_SECRET (for a "
                              "`binance-mcp simulator`, the key and secret it printed at start-up).")
        if chosen == "paper":
            raise ConfigError("BINANCE_MCP_BASE_URL cannot be combined with BINANCE_MCP_MODE=paper: paper mode "
                              "starts its own simulator. Remove one of them.")
        return chosen or "custom"
    if has_keys:
        if chosen is None:
            raise ConfigError(
                "API keys are set but no mode is chosen. Set BINANCE_MCP_MODE=testnet to trade on Binance's "
                "testnet, or BINANCE_MCP_MODE=live to trade with real money (or remove the keys for paper mode)."
            )
        if chosen == "paper":
            raise ConfigError("BINANCE_MCP_MODE=paper runs on the embedded simulator and takes no API keys: "
                              "remove BINANCE_API_KEY and BINANCE_API_SECRET, or choose testnet or live.")
        return chosen
    if chosen in ("testnet", "live"):
        raise ConfigError(f"BINANCE_MCP_MODE={chosen} needs BINANCE_API_KEY and BINANCE_API_SECRET.")
    return "paper"
