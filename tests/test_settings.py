"""Settings: environment and flags -> Settings, or a ConfigError whose exact text tells the user what to do.

The error table was captured from the hand-written loader before settings moved to one pydantic-settings
declaration; it must stay green (same message, same priority when several things are wrong).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from binance_mcp import cli
from binance_mcp.errors import ConfigError
from binance_mcp.paths import default_state_dir
from binance_mcp.settings import (
    ENVIRONMENT,
    LIVE_SPOT_URL,
    SERVE_FLAGS,
    TESTNET_FUTURES_URL,
    TESTNET_SPOT_URL,
    Settings,
    load_settings,
)

KEYS = {"BINANCE_API_KEY": "k" * 20, "BINANCE_API_SECRET": "s" * 20}
URL = "http://127.0.0.1:8765"
NEEDS_KEYS = "BINANCE_MCP_BASE_URL needs BINANCE_API_KEY and BINANCE_API_SECRET (for a `binance-mcp simulator`, " \
             "the key and secret it printed at start-up)."
PAIR = "Set both BINANCE_API_KEY and BINANCE_API_SECRET, or neither (paper mode)."
# an API key with nothing to sign for it (the tests' keychain is the empty null keyring: tests/conftest.py)
ALONE = ("BINANCE_API_KEY is set but nothing signs for it: set BINANCE_API_SECRET or BINANCE_API_SECRET_FILE (an HMAC "
         "key), BINANCE_API_PRIVATE_KEY_FILE (an Ed25519 or RSA key), or store the secret in the OS keychain with "
         "`binance-mcp keys store`; or remove BINANCE_API_KEY for paper mode. The OS keychain has no secret for this "
         "API key.")
NO_MODE = ("API keys are set but no mode is chosen. Set BINANCE_MCP_MODE=testnet to trade on Binance's testnet, or "
           "BINANCE_MCP_MODE=live to trade with real money (or remove the keys for paper mode).")
PAPER_KEYS = ("BINANCE_MCP_MODE=paper runs on the embedded simulator and takes no API keys: remove BINANCE_API_KEY "
              "and BINANCE_API_SECRET, or choose testnet or live.")
URL_PAPER = ("BINANCE_MCP_BASE_URL cannot be combined with BINANCE_MCP_MODE=paper: paper mode starts its own "
             "simulator. Remove one of them.")
TIMEOUT_RANGE = "BINANCE_MCP_TIMEOUT must be between 0.1 and 120 seconds."
TICK_RANGE = "BINANCE_MCP_PAPER_TICK_SECONDS must be 0 (frozen prices) or more."
TTL_RANGE = "BINANCE_MCP_APPROVAL_TTL must be between 1 and 86400 seconds."
WAIT_RANGE = "BINANCE_MCP_APPROVAL_TIMEOUT must be between 1 and 3600 seconds."
LOG = "BINANCE_MCP_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR."


def nan(name: str) -> str:
    return f"{name}='x' is not a number of seconds."


ERRORS = [  # (environment, flags, exact message)
    ({"BINANCE_MCP_MODE": "LiveX"}, {}, "BINANCE_MCP_MODE='livex' is not valid: use paper, testnet or live."),
    ({"BINANCE_MCP_MODE": "custom"}, {}, "BINANCE_MCP_MODE='custom' is not valid: use paper, testnet or live."),
    ({}, {"mode": "demo"}, "BINANCE_MCP_MODE='demo' is not valid: use paper, testnet or live."),
    ({}, {"mode": ""}, "BINANCE_MCP_MODE='' is not valid: use paper, testnet or live."),
    ({"BINANCE_TESTNET": "true", "BINANCE_MCP_MODE": "live", **KEYS}, {},
     "BINANCE_TESTNET=true contradicts BINANCE_MCP_MODE=live: remove one of them."),
    ({"BINANCE_TESTNET": "1", "BINANCE_MCP_MODE": "PAPER"}, {},
     "BINANCE_TESTNET=true contradicts BINANCE_MCP_MODE=paper: remove one of them."),
    ({"BINANCE_API_KEY": "k"}, {}, ALONE),
    ({"BINANCE_API_SECRET": "s"}, {}, PAIR),
    ({"BINANCE_SECRET_KEY": "s"}, {}, PAIR),
    ({"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "   "}, {}, ALONE),
    ({"BINANCE_MCP_BASE_URL": "ftp://x", **KEYS}, {},
     "BINANCE_MCP_BASE_URL='ftp://x' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({"BINANCE_MCP_BASE_URL": "localhost:8765", **KEYS}, {},
     "BINANCE_MCP_BASE_URL='localhost:8765' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({"BINANCE_MCP_BASE_URL": "http://", **KEYS}, {},
     "BINANCE_MCP_BASE_URL='http://' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({}, {"base_url": ""}, "BINANCE_MCP_BASE_URL='' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({"BINANCE_MCP_BASE_URL": URL}, {}, NEEDS_KEYS),
    ({"BINANCE_MCP_BASE_URL": URL, "BINANCE_MCP_MODE": "testnet"}, {}, NEEDS_KEYS),
    ({"BINANCE_MCP_BASE_URL": URL, "BINANCE_MCP_MODE": "paper", **KEYS}, {}, URL_PAPER),
    (KEYS, {}, NO_MODE),
    ({**KEYS, "BINANCE_TESTNET": "no"}, {}, NO_MODE),
    ({**KEYS, "BINANCE_MCP_MODE": "paper"}, {}, PAPER_KEYS),
    ({"BINANCE_MCP_MODE": "testnet"}, {}, "BINANCE_MCP_MODE=testnet needs BINANCE_API_KEY and BINANCE_API_SECRET."),
    ({"BINANCE_MCP_MODE": "live"}, {}, "BINANCE_MCP_MODE=live needs BINANCE_API_KEY and BINANCE_API_SECRET."),
    ({"BINANCE_TESTNET": "yes"}, {}, "BINANCE_MCP_MODE=testnet needs BINANCE_API_KEY and BINANCE_API_SECRET."),
    ({}, {"mode": "live"}, "BINANCE_MCP_MODE=live needs BINANCE_API_KEY and BINANCE_API_SECRET."),
    ({"BINANCE_MCP_PAPER_BALANCES": "USDT"}, {},
     "BINANCE_MCP_PAPER_BALANCES: balance 'USDT' is not ASSET=AMOUNT (for example USDT=10000,BTC=0.5)"),
    ({"BINANCE_MCP_PAPER_BALANCES": "USDT=abc"}, {}, "BINANCE_MCP_PAPER_BALANCES: balance 'USDT=abc': 'abc' is not a number"),
    ({}, {"paper_balances": "BTC=-1"}, "BINANCE_MCP_PAPER_BALANCES: balance 'BTC=-1': the amount must be a finite number >= 0"),
    ({"BINANCE_MCP_TIMEOUT": "x"}, {}, nan("BINANCE_MCP_TIMEOUT")),
    ({"BINANCE_MCP_TIMEOUT": "10s"}, {}, "BINANCE_MCP_TIMEOUT='10s' is not a number of seconds."),
    ({}, {"timeout": "x"}, nan("BINANCE_MCP_TIMEOUT")),
    ({"BINANCE_MCP_TIMEOUT": "0.05"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_TIMEOUT": "121"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_TIMEOUT": "0"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_TIMEOUT": "nan"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_TIMEOUT": "inf"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_PAPER_TICK_SECONDS": "x"}, {}, nan("BINANCE_MCP_PAPER_TICK_SECONDS")),
    ({"BINANCE_MCP_PAPER_TICK_SECONDS": "-0.5"}, {}, TICK_RANGE),
    ({"BINANCE_MCP_APPROVAL_TTL": "x"}, {}, nan("BINANCE_MCP_APPROVAL_TTL")),
    ({"BINANCE_MCP_APPROVAL_TTL": "0.5"}, {}, TTL_RANGE),
    ({"BINANCE_MCP_APPROVAL_TTL": "86401"}, {}, TTL_RANGE),
    ({"BINANCE_MCP_APPROVAL_TIMEOUT": "x"}, {}, nan("BINANCE_MCP_APPROVAL_TIMEOUT")),
    ({"BINANCE_MCP_APPROVAL_TIMEOUT": "0"}, {}, WAIT_RANGE),
    ({}, {"approval_timeout": "3601"}, WAIT_RANGE),
    ({"BINANCE_MCP_LOG_LEVEL": "verbose"}, {}, LOG),
    ({}, {"log_level": "trace"}, LOG),
    # several things wrong: the same one is reported first as before
    ({"BINANCE_MCP_MODE": "x", "BINANCE_MCP_TIMEOUT": "x", "BINANCE_API_KEY": "k"}, {},
     "BINANCE_MCP_MODE='x' is not valid: use paper, testnet or live."),
    ({"BINANCE_API_KEY": "k", "BINANCE_MCP_TIMEOUT": "x", "BINANCE_MCP_BASE_URL": "ftp://x"}, {}, ALONE),
    ({"BINANCE_MCP_BASE_URL": "ftp://x", "BINANCE_MCP_TIMEOUT": "x"}, {},
     "BINANCE_MCP_BASE_URL='ftp://x' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({"BINANCE_MCP_MODE": "live", "BINANCE_MCP_PAPER_BALANCES": "x"}, {},
     "BINANCE_MCP_MODE=live needs BINANCE_API_KEY and BINANCE_API_SECRET."),
    ({"BINANCE_MCP_PAPER_BALANCES": "x=1=2", "BINANCE_MCP_TIMEOUT": "x"}, {},
     "BINANCE_MCP_PAPER_BALANCES: balance 'x=1=2': '1=2' is not a number"),
    ({"BINANCE_MCP_PAPER_TICK_SECONDS": "-1", "BINANCE_MCP_TIMEOUT": "999"}, {}, TIMEOUT_RANGE),
    ({"BINANCE_MCP_PAPER_TICK_SECONDS": "-1", "BINANCE_MCP_APPROVAL_TTL": "0"}, {}, TICK_RANGE),
    ({"BINANCE_MCP_APPROVAL_TIMEOUT": "0", "BINANCE_MCP_APPROVAL_TTL": "0"}, {}, TTL_RANGE),
    ({"BINANCE_MCP_APPROVAL_TIMEOUT": "0", "BINANCE_MCP_LOG_LEVEL": "x"}, {}, WAIT_RANGE),
    ({"BINANCE_MCP_PAPER_FEED": "real"}, {}, "BINANCE_MCP_PAPER_FEED='real' is not valid: use live or synthetic."),
    ({}, {"paper_upstream": "api.binance.com"},
     "BINANCE_MCP_PAPER_UPSTREAM='api.binance.com' is not an http(s) URL such as http://127.0.0.1:8765."),
    ({"BINANCE_MCP_CONSOLE_URL": "127.0.0.1:8766/console"}, {},
     "BINANCE_MCP_CONSOLE_URL='127.0.0.1:8766/console' is not an http(s) URL such as http://127.0.0.1:8766/console."),
]


@pytest.mark.parametrize(("env", "flags", "message"), ERRORS)
def test_bad_input_stops_with_the_exact_message(env, flags, message):
    with pytest.raises(ConfigError) as info:
        load_settings(env, **flags)
    assert str(info.value) == message
    for chained in (info.value.__cause__, info.value.__context__):  # no pydantic error behind it either
        assert not isinstance(chained, ValidationError)


GOOD = [  # (environment, flags, expected attributes)
    ({}, {}, {"mode": "paper", "api_key": None, "api_secret": None, "base_url": None, "policy": None,
              "paper_balances": {"USDT": Decimal("10000")}, "timeout": 10.0, "log_level": "WARNING",
              "paper_tick_seconds": 1.0, "approval_ttl": 600.0, "approval_timeout": 120.0}),
    ({**KEYS, "BINANCE_MCP_MODE": "testnet"}, {}, {"mode": "testnet", "spot_url": TESTNET_SPOT_URL,
                                                  "futures_url": TESTNET_FUTURES_URL,
                                                  "exchange_host": "testnet.binance.vision"}),
    ({**KEYS, "BINANCE_TESTNET": "yes"}, {}, {"mode": "testnet"}),
    ({**KEYS, "BINANCE_TESTNET": "TRUE", "BINANCE_MCP_MODE": "testnet"}, {}, {"mode": "testnet"}),
    ({"BINANCE_TESTNET": "false"}, {}, {"mode": "paper"}),
    ({"BINANCE_TESTNET": "on"}, {}, {"mode": "paper"}),  # only 1, true and yes mean true
    ({**KEYS, "BINANCE_MCP_MODE": " LIVE "}, {}, {"mode": "live", "spot_url": LIVE_SPOT_URL}),
    ({**KEYS, "BINANCE_MCP_BASE_URL": URL + "/"}, {}, {"mode": "custom", "spot_url": URL + "/api",
                                                     "futures_url": URL + "/fapi", "exchange_host": "127.0.0.1:8765"}),
    ({**KEYS, "BINANCE_MCP_BASE_URL": URL, "BINANCE_MCP_MODE": "live"}, {}, {"mode": "live", "spot_url": URL + "/api"}),
    ({"BINANCE_API_KEY": "key", "BINANCE_SECRET_KEY": "alias", "BINANCE_MCP_MODE": "testnet"}, {},
     {"secrets": ["key", "alias"]}),
    ({"BINANCE_API_KEY": "key", "BINANCE_API_SECRET": "first", "BINANCE_SECRET_KEY": "alias",
      "BINANCE_MCP_MODE": "testnet"}, {}, {"secrets": ["key", "first"]}),
    ({"BINANCE_API_KEY": "key", "BINANCE_API_SECRET": "  ", "BINANCE_SECRET_KEY": "alias",
      "BINANCE_MCP_MODE": "testnet"}, {}, {"secrets": ["key", "alias"]}),
    ({"BINANCE_API_KEY": " key ", "BINANCE_API_SECRET": " sec ", "BINANCE_MCP_MODE": "testnet"}, {},
     {"secrets": ["key", "sec"]}),
    ({"BINANCE_API_KEY": "  ", "BINANCE_MCP_MODE": "", "BINANCE_MCP_TIMEOUT": " ", "BINANCE_MCP_BASE_URL": ""}, {},
     {"mode": "paper", "timeout": 10.0, "base_url": None}),
    ({"BINANCE_MCP_LOG_LEVEL": "debug", "BINANCE_MCP_TIMEOUT": "0.1", "BINANCE_MCP_APPROVAL_TTL": "86400",
      "BINANCE_MCP_APPROVAL_TIMEOUT": "1", "BINANCE_MCP_PAPER_TICK_SECONDS": "0"}, {},
     {"log_level": "DEBUG", "timeout": 0.1, "approval_ttl": 86400.0, "approval_timeout": 1.0,
      "paper_tick_seconds": 0.0}),
    ({"BINANCE_MCP_TIMEOUT": "120", "BINANCE_MCP_APPROVAL_TTL": "1", "BINANCE_MCP_APPROVAL_TIMEOUT": "3600",
      "BINANCE_MCP_PAPER_TICK_SECONDS": "1e3"}, {},
     {"timeout": 120.0, "approval_ttl": 1.0, "approval_timeout": 3600.0, "paper_tick_seconds": 1000.0}),
    ({"BINANCE_MCP_PAPER_BALANCES": "usdt=5, btc=0.5,"}, {},
     {"paper_balances": {"USDT": Decimal("5"), "BTC": Decimal("0.5")}}),
    ({"BINANCE_MCP_POLICY": "~/p.yaml", "BINANCE_MCP_STATE_DIR": "~/st"}, {},
     {"policy": Path("~/p.yaml").expanduser(), "state_dir": Path("~/st").expanduser()}),
    # flags win over the environment; None flags are ignored; empty flags mean the default for these settings
    ({"BINANCE_MCP_TIMEOUT": "5", "BINANCE_MCP_LOG_LEVEL": "INFO"}, {"timeout": "7", "log_level": None},
     {"timeout": 7.0, "log_level": "INFO"}),
    ({"BINANCE_MCP_TIMEOUT": "5"}, {"timeout": 8}, {"timeout": 8.0}),
    ({"BINANCE_MCP_TIMEOUT": "5", "BINANCE_MCP_POLICY": "/p", "BINANCE_MCP_PAPER_BALANCES": "BTC=1"},
     {"timeout": "", "policy": "", "paper_balances": "", "log_level": "", "state_dir": ""},
     {"timeout": 10.0, "policy": None, "paper_balances": {"USDT": Decimal("10000")}, "log_level": "WARNING",
      "state_dir": default_state_dir()}),
    ({**KEYS, "BINANCE_MCP_MODE": "testnet"}, {"mode": "live"}, {"mode": "live"}),
    ({"BINANCE_MCP_STATE_DIR": "/env"}, {"state_dir": "/flag", "paper_tick_seconds": "0"},
     {"state_dir": Path("/flag"), "paper_tick_seconds": 0.0}),
    ({"BINANCE_MCP_PAPER_BALANCES": "BTC=1"}, {"paper_balances": "ETH=2"}, {"paper_balances": {"ETH": Decimal("2")}}),
    ({}, {"unknown_flag": "x"}, {"mode": "paper"}),
    # the live paper feed: Binance's two public hosts by default, one base URL for both markets when set
    ({}, {}, {"paper_feed": "synthetic", "paper_upstream": None,
              "paper_upstream_urls": ("https://api.binance.com/api", "https://fapi.binance.com/fapi")}),
    ({"BINANCE_MCP_PAPER_FEED": " Live ", "BINANCE_MCP_PAPER_UPSTREAM": URL + "/"}, {},
     {"paper_feed": "live", "paper_upstream_urls": (URL + "/api", URL + "/fapi")}),
    ({"BINANCE_MCP_PAPER_FEED": "live"}, {"paper_feed": ""}, {"paper_feed": "synthetic"}),
]


@pytest.mark.parametrize(("env", "flags", "expected"), GOOD)
def test_environment_and_flags_give_these_settings(env, flags, expected):
    s = load_settings(env, **flags)
    for name, value in expected.items():
        got = getattr(s, name)
        got = got() if callable(got) else got
        assert got == value, name


def test_a_feed_given_is_told_apart_from_the_default():
    """The stored paper account keeps its feed unless the setting is given and disagrees (simulator/paper.py)."""
    assert "paper_feed" not in load_settings({}).model_fields_set
    assert "paper_feed" in load_settings({"BINANCE_MCP_PAPER_FEED": "synthetic"}).model_fields_set
    assert "paper_upstream" in load_settings({}, paper_upstream=URL).model_fields_set


def test_defaults():
    s = load_settings({})
    assert s.state_dir == default_state_dir()
    assert s.secrets() == []
    assert s.spot_url == LIVE_SPOT_URL  # paper mode reports the embedded simulator in --show-config instead


def test_load_settings_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("BINANCE_MCP_TIMEOUT", "3")
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.delenv("BINANCE_SECRET_KEY", raising=False)
    monkeypatch.delenv("BINANCE_MCP_MODE", raising=False)
    monkeypatch.delenv("BINANCE_TESTNET", raising=False)
    monkeypatch.delenv("BINANCE_MCP_BASE_URL", raising=False)
    assert load_settings().timeout == 3.0


def test_settings_values_are_secret_and_redacted():
    s = load_settings({"BINANCE_API_KEY": "A" * 30, "BINANCE_SECRET_KEY": "B" * 30, "BINANCE_MCP_MODE": "live"})
    assert "A" * 12 not in repr(s) and "B" * 12 not in repr(s)
    assert s.redact(f"x {'A' * 30} y {'B' * 12}") == "x **** y ****"


# -- derived from the declaration: the environment table, serve flags and --help, --show-config -----------------
def test_every_variable_is_declared_once_with_a_meaning_and_a_default():
    assert list(ENVIRONMENT) == [
        "BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_API_SECRET_FILE", "BINANCE_API_PRIVATE_KEY_FILE",
        "BINANCE_API_PRIVATE_KEY_PASSPHRASE", "BINANCE_MCP_MODE", "BINANCE_TESTNET", "BINANCE_MCP_BASE_URL",
        "BINANCE_MCP_POLICY", "BINANCE_MCP_STATE_DIR", "BINANCE_MCP_STATE_URL", "BINANCE_MCP_PAPER_BALANCES",
        "BINANCE_MCP_TIMEOUT",
        "BINANCE_MCP_PAPER_TICK_SECONDS", "BINANCE_MCP_PAPER_FEED", "BINANCE_MCP_PAPER_UPSTREAM",
        "BINANCE_MCP_APPROVAL_TTL", "BINANCE_MCP_APPROVAL_TIMEOUT", "BINANCE_MCP_CONSOLE_URL",
        "BINANCE_MCP_LOG_LEVEL"]
    for meaning, default in ENVIRONMENT.values():
        assert meaning and default
    assert "BINANCE_SECRET_KEY" in ENVIRONMENT["BINANCE_API_SECRET"][0]
    assert ENVIRONMENT["BINANCE_MCP_TIMEOUT"][1] == "10" and ENVIRONMENT["BINANCE_MCP_PAPER_BALANCES"][1] == "USDT=10000"


def test_serve_flags_are_every_setting_but_the_keys_and_testnet():
    assert {env for _, env in SERVE_FLAGS.values()} == set(ENVIRONMENT) - {
        "BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_API_SECRET_FILE", "BINANCE_API_PRIVATE_KEY_FILE",
        "BINANCE_API_PRIVATE_KEY_PASSPHRASE", "BINANCE_TESTNET"}
    for flag, (field, _) in SERVE_FLAGS.items():
        assert flag == "--" + field.replace("_", "-") and field in Settings.model_fields


def serve_help(monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    parser = cli.build_parser()
    return parser._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]


def test_serve_help_lists_every_setting_from_the_declaration(monkeypatch):
    text = " ".join(serve_help(monkeypatch).split())
    for name, (meaning, default) in ENVIRONMENT.items():
        assert name in text and meaning in text and f"default: {default}" in text, name
    for flag in SERVE_FLAGS:
        assert f"{flag} " in text
    assert "--show-config" in text and "--api-key" not in text


def show_config(monkeypatch, capsys, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    for name in [*ENVIRONMENT, "BINANCE_SECRET_KEY"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("FASTMCP_SHOW_SERVER_BANNER", "FASTMCP_CHECK_FOR_UPDATES", "FASTMCP_ENV_FILE"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
    code = cli.main(["--show-config", *args])  # serve is the default command
    out, err = capsys.readouterr()
    return code, out, err


def test_show_config_masks_secrets_and_prints_on_stderr(monkeypatch, capsys):
    key, secret = "ShowConfigKey" + "1" * 30, "ShowConfigSecret" + "2" * 30
    code, out, err = show_config(monkeypatch, capsys, {"BINANCE_API_KEY": key, "BINANCE_SECRET_KEY": secret,
                                                       "BINANCE_MCP_MODE": "testnet"}, "--timeout", "7")
    assert code == 0 and out == ""
    config = json.loads(err[err.index("{"):])
    assert config["api_key"] == "****" + key[-4:] and config["api_secret"] == "****" + secret[-4:]
    assert key[:12] not in err and secret[:12] not in err and key[-12:] not in err and secret[-12:] not in err
    assert config["mode"] == "testnet" and config["timeout"] == 7.0 and config["spot_url"] == TESTNET_SPOT_URL
    assert set(Settings.model_fields) - {"testnet"} <= set(config)


def test_show_config_in_paper_mode(monkeypatch, capsys):
    code, out, err = show_config(monkeypatch, capsys, {"BINANCE_MCP_PAPER_BALANCES": "BTC=1"})
    config = json.loads(err[err.index("{"):])
    assert code == 0 and out == ""
    assert config["mode"] == "paper" and config["api_key"] is None and config["policy"] == "built-in read-only"
    assert config["spot_url"].startswith("embedded simulator") and config["paper_balances"] == {"BTC": "1"}


def test_a_bad_setting_exits_2_with_the_message_on_stderr(monkeypatch, capsys):
    code, out, err = show_config(monkeypatch, capsys, {}, "--timeout", "x")
    assert code == 2 and out == ""
    assert err == f"binance-mcp serve: {nan('BINANCE_MCP_TIMEOUT')}\n"


# -- what an MCP Bundle and a client config pass ---------------------------------------------------------
def test_an_unexpanded_bundle_placeholder_counts_as_unset():
    """Claude Desktop passes ${user_config.KEY} as it is for a bundle field left blank."""
    s = load_settings({"BINANCE_API_KEY": "${user_config.api_key}", "BINANCE_API_SECRET": " ${user_config.api_secret} ",
                       "BINANCE_MCP_MODE": "paper", "BINANCE_MCP_POLICY": "${user_config.policy}"})
    assert s.mode == "paper" and s.api_key is None and s.api_secret is None and s.policy is None
    with pytest.raises(ConfigError) as e:  # a real key with a blank secret is still half a pair
        load_settings({**KEYS, "BINANCE_API_SECRET": "${user_config.api_secret}", "BINANCE_MCP_MODE": "testnet"})
    assert str(e.value) == ALONE
    kept = load_settings({"BINANCE_MCP_POLICY": "/x/${user_config.policy}.yaml"})  # only a whole placeholder
    assert kept.policy == Path("/x/${user_config.policy}.yaml")


def test_a_builtin_policy_name_stays_a_name_and_any_other_value_is_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings({"BINANCE_MCP_POLICY": "spot-trader"}).policy == Path("spot-trader")
    assert load_settings({"BINANCE_MCP_POLICY": "./spot-trader"}).policy == tmp_path / "spot-trader"
    assert load_settings({"BINANCE_MCP_POLICY": "mine.yaml"}).policy == tmp_path / "mine.yaml"
    assert load_settings({}, policy="read-only").policy == Path("read-only")  # the --policy flag alike
    assert load_settings({"BINANCE_MCP_POLICY": "~/p.yaml"}).policy == Path.home() / "p.yaml"


def test_the_state_url_must_be_postgresql_and_its_password_is_a_secret():
    with pytest.raises(ConfigError, match="BINANCE_MCP_STATE_URL='mysql://db/x' is not a postgresql:// URL"):
        load_settings({"BINANCE_MCP_STATE_URL": "mysql://db/x"})
    s = load_settings({"BINANCE_MCP_STATE_URL": "postgresql://binance:s3cret-pw@db.internal:5432/state"})
    assert s.public_view()["state_url"] == "postgresql://binance@db.internal:5432/state"
    assert s.redact("connection to postgresql://binance:s3cret-pw@db failed") == \
        "connection to postgresql://binance:****@db failed"
