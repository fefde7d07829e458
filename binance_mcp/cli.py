"""Command line: ``binance-mcp [serve|connect|demo|simulator|paper|policy|approvals|audit|protections|keys|agents|
console|kill]``.

stdout belongs to the MCP channel when serving; every human-facing message here goes to stderr
unless the command's whole job is to print a report.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from binance_mcp import __version__


def _serve_parser(sub: argparse._SubParsersAction, flags: bool = True) -> None:
    """``serve`` with a flag for each setting declared with one (binance_mcp.settings); ``flags=False`` leaves them
    out, so that the other commands start without loading the settings."""
    p = sub.add_parser(
        "serve", help="run the MCP server over stdio (the default)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the Binance MCP server over stdio (JSON-RPC on stdout, logs on stderr). Without API keys "
                    "it trades on the embedded paper exchange. Every flag overrides its environment variable.",
    )
    if not flags:
        return
    from binance_mcp.settings import ENVIRONMENT, SERVE_FLAGS

    for flag, (field, env) in SERVE_FLAGS.items():
        meaning, default = ENVIRONMENT[env]
        p.add_argument(flag, dest=field, default=None,
                       help=f"{meaning} (default: {default}; overrides {env})".replace("%", "%%"))
    h = p.add_argument_group("HTTP service (the guard in its own trust domain: docs/deployment.md)")
    h.add_argument("--http", nargs="?", const="127.0.0.1:8765", default=None, metavar="HOST:PORT",
                   help="serve MCP Streamable HTTP at /mcp instead of stdio (default address 127.0.0.1:8765); every "
                        "request needs an agent's bearer token (binance-mcp agents add)")
    h.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback address; needs --tls-cert/--tls-key or --behind-tls-proxy")
    h.add_argument("--tls-cert", metavar="FILE", help="TLS certificate chain (PEM) for HTTPS in this server")
    h.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    h.add_argument("--behind-tls-proxy", action="store_true",
                   help="a TLS-terminating proxy is in front: this server speaks plain HTTP to it")
    h.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host header name to accept besides loopback names and the bound address (a proxy's "
                        "public name); repeatable")
    h.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser Origin to accept (scheme://host[:port]); repeatable. Others get 403")
    p.add_argument("--show-config", action="store_true",
                   help="print the effective configuration (secrets masked) on stderr and exit")
    p.add_argument("--check", action="store_true",
                   help="load the configuration and the policy and try the state directory, then exit: 0 when the "
                        "server would start ready to trade, 2 (with the error on stderr) when it would start locked "
                        "or with a state directory it cannot write")
    flagged = {env for _, env in SERVE_FLAGS.values()}
    p.epilog = "environment variables without a flag:\n" + "\n".join(
        f"  {name:<28} {meaning} (default: {default})" for name, (meaning, default) in ENVIRONMENT.items()
        if name not in flagged) + "\n\nAPI keys are read from the environment only, never from flags (flags show up " \
        "in process lists)."


def _connect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "connect", help="a stdio bridge to a binance-mcp service over HTTP (for Claude Desktop)",
        description="Serve MCP over stdio and forward every request to the binance-mcp service at URL (started with "
                    "`binance-mcp serve --http`, usually as another OS user), with the agent's token. The bridge holds "
                    "no API key, no policy and no state. If the service is down, tools/list still answers (all 36 "
                    "tools) and each call says the service cannot be reached.",
    )
    p.add_argument("url", metavar="URL", help="the service's MCP endpoint, e.g. http://127.0.0.1:8765/mcp (plain "
                                              "http only to this machine; https:// otherwise)")
    p.add_argument("--token-file", required=True, metavar="FILE",
                   help="a file holding only this agent's token (`binance-mcp agents add NAME` prints it on the "
                        "service); keep it readable by this user only (chmod 600)")


def _simulator_parser(sub: argparse._SubParsersAction) -> None:
    from binance_mcp.simulator.config import DEFAULT_API_KEY, DEFAULT_API_SECRET

    p = sub.add_parser(
        "simulator",
        help="run the embedded Binance simulator (spot + USD-M futures REST) on 127.0.0.1",
        description=(
            "Run the Binance exchange simulator on 127.0.0.1. Any Binance client can use it: point its "
            "spot base URL at <url>/api and its futures base URL at <url>/fapi; binance-mcp serve uses it "
            "with BINANCE_MCP_BASE_URL=<url> and the key and secret printed at start-up (on stderr). "
            f"Default credentials: key {DEFAULT_API_KEY}, secret {DEFAULT_API_SECRET}."
        ),
    )
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one, printed at start-up)")
    p.add_argument("--seed", type=int, default=42, help="seed of the price feed's random walk (default 42)")
    p.add_argument("--balances", default="USDT=10000",
                   help="spot balances at start, e.g. USDT=10000,BTC=0.5 (default USDT=10000)")
    p.add_argument("--futures-balances", default="USDT=10000",
                   help="USD-M futures wallet at start (default USDT=10000)")
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key the simulator accepts")
    p.add_argument("--api-secret", default=DEFAULT_API_SECRET, help="the API secret requests are signed with")
    p.add_argument("--ed25519-public-key", metavar="FILE",
                   help="register this Ed25519 public key (PEM): it gets an API key of its own, printed at start-up, "
                        "whose requests must be signed with the private key, as at Binance")
    p.add_argument("--rsa-public-key", metavar="FILE",
                   help="register this RSA public key (PEM) likewise (signatures: PKCS#1 v1.5 with SHA-256)")
    p.add_argument("--controls", action="store_true",
                   help="enable the /_sim/ test controls (set prices and balances, clock skew, faults)")
    p.add_argument("--tick-seconds", type=float, default=1.0,
                   help="seconds between random-walk steps of the price feed; 0 freezes prices (default 1)")
    p.add_argument("--api-restrictions", default=None, metavar="JSON",
                   help="what GET /sapi/v1/account/apiRestrictions answers: Binance's fields as a JSON object, "
                        "merged over the default (reading, spot and futures trading enabled; withdrawals and "
                        "transfers disabled; ipRestrict true), e.g. '{\"enableWithdrawals\": true}'; 'absent' "
                        "answers 404, as Binance's testnets do")


def build_parser(serve_flags: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binance-mcp",
        description="Binance MCP server with a policy guard on every tool call, and an embedded paper exchange.",
    )
    parser.add_argument("--version", action="version", version=f"binance-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    _serve_parser(sub, serve_flags)
    _connect_parser(sub)
    sub.add_parser("demo", help="a short, real session against the paper exchange, shown readably",
                   description="Start `binance-mcp serve` in paper mode as a subprocess, talk to it over stdio as an "
                               "MCP client would, and show what happened.")
    _simulator_parser(sub)
    from binance_mcp.policy import approvals_cli, audit_cli, protections_cli
    from binance_mcp.policy import cli as policy_cli

    policy_cli.add_parser(sub)
    from binance_mcp.simulator import paper_cli

    paper_cli.add_parser(sub)
    approvals_cli.add_parser(sub)
    audit_cli.add_parser(sub)
    protections_cli.add_parser(sub)
    from binance_mcp import keys_cli

    keys_cli.add_parser(sub)
    from binance_mcp.service import agents_cli

    agents_cli.add_parser(sub)
    from binance_mcp.service.console import cli as console_cli

    console_cli.add_parsers(sub)
    return parser


def run_simulator(args: argparse.Namespace) -> int:
    from binance_mcp.simulator.config import (
        DEFAULT_API_RESTRICTIONS,
        SimConfig,
        parse_api_restrictions,
        parse_balances,
    )
    from binance_mcp.simulator.runner import serve
    from binance_mcp.simulator.state import Simulator

    try:
        cfg = SimConfig(
            seed=args.seed, api_key=args.api_key, api_secret=args.api_secret,
            spot_balances=parse_balances(args.balances), futures_balances=parse_balances(args.futures_balances),
            controls=args.controls, tick_seconds=args.tick_seconds,
            ed25519_public_key=_public_key_file(args.ed25519_public_key, "--ed25519-public-key"),
            rsa_public_key=_public_key_file(args.rsa_public_key, "--rsa-public-key"),
            api_restrictions=dict(DEFAULT_API_RESTRICTIONS) if args.api_restrictions is None
            else parse_api_restrictions(args.api_restrictions),
        )
        sim = Simulator(cfg)  # checks the public keys
    except ValueError as exc:
        print(f"binance-mcp simulator: {exc}", file=sys.stderr)
        return 2
    keys = "".join(f"  {s.kind + ' key:':<13}API key {s.api_key} (signatures checked with "
                   f"{args.ed25519_public_key if s.kind == 'ed25519' else args.rsa_public_key})\n"
                   for s in sim.signers.values() if s.kind != "hmac")

    async def main() -> None:
        runner, port = await serve(sim, args.port)
        url = f"http://127.0.0.1:{port}"
        print(
            f"Binance simulator listening on {url}\n"
            f"  spot API:    {url}/api     futures API: {url}/fapi\n"
            f"  API key:     {cfg.api_key}\n"
            f"  API secret:  {cfg.api_secret}\n"
            f"{keys}"
            f"  controls:    {'on at ' + url + '/_sim/' if cfg.controls else 'off'}\n"
            f"  serve with:  BINANCE_MCP_BASE_URL={url} BINANCE_API_KEY=<key> BINANCE_API_SECRET=<secret> "
            "binance-mcp serve\n"
            f"{OR_WITH if keys else ''}"
            "Ctrl-C stops it.",
            file=sys.stderr, flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # pragma: no cover - Windows
                pass
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return 0


OR_WITH = "  or with:    BINANCE_API_KEY=<its API key> BINANCE_API_PRIVATE_KEY_FILE=<its private key> (no secret)\n"


def _public_key_file(path: str | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return open(path, "rb").read()
    except OSError as exc:
        raise ValueError(f"{flag} {path} cannot be read ({exc.strerror or exc})") from None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["serve", *argv]  # serve is the default subcommand
    parser = build_parser(serve_flags=argv[0] == "serve")  # approvals and audit start without the settings
    args = parser.parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()  # inside the try: a reader that went away fails this flush, not the one at exit
        return status
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (``binance-mcp audit | head -1``): stop quietly, as other commands do.
    stdout is pointed at /dev/null first, so that Python's own flush at exit does not report the pipe either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - no stdout file descriptor at all
        pass
    return 0


def _run(args: argparse.Namespace) -> int:
    command = args.command or "serve"
    if command == "simulator":
        return run_simulator(args)
    if command == "connect":
        return run_connect(args)
    if command == "policy":
        from binance_mcp.policy.cli import run

        return run(args)
    if command == "paper":
        from binance_mcp.simulator.paper_cli import run

        return run(args)
    if command == "approvals":
        from binance_mcp.policy.approvals_cli import run

        return run(args)
    if command == "audit":
        from binance_mcp.policy.audit_cli import run

        return run(args)
    if command == "protections":
        from binance_mcp.policy.protections_cli import run

        return run(args)
    if command == "keys":
        from binance_mcp.keys_cli import run

        return run(args)
    if command == "agents":
        from binance_mcp.service.agents_cli import run

        return run(args)
    if command in ("console", "kill"):
        from binance_mcp.service.console import cli as console_cli

        return console_cli.run(args) if command == "console" else console_cli.run_kill(args)
    if command == "demo":
        from binance_mcp.demo import run_demo

        return run_demo(lambda text="": print(text, flush=True))
    return run_serve(args)


def run_serve(args: argparse.Namespace) -> int:
    """Serve over stdio. A policy or a configuration that cannot be loaded does not stop the server (a client would
    show only "Connection closed"): it starts locked, shows the error in binance_policy_status and refuses every
    other call. ``--check`` and ``--show-config`` fail fast instead (exit 2), for scripts."""
    import os

    # stdout is the MCP channel: no banner, no update check (it calls pypi.org), no .env surprises.
    os.environ["FASTMCP_SHOW_SERVER_BANNER"] = "false"
    os.environ["FASTMCP_CHECK_FOR_UPDATES"] = "off"
    os.environ.setdefault("FASTMCP_ENV_FILE", os.devnull)
    from binance_mcp.errors import ConfigError
    from binance_mcp.settings import SERVE_FLAGS, load_settings

    check = bool(getattr(args, "check", False))
    http = getattr(args, "http", None)
    flags = {field: getattr(args, field, None) for field, _ in SERVE_FLAGS.values()}
    try:
        settings = load_settings(**flags)
    except ConfigError as exc:
        text = _env_redact(str(exc))
        print(f"binance-mcp serve: {text}", file=sys.stderr)
        if check or getattr(args, "show_config", False) or http is not None:
            return 2
        print(LOCKED_NOTE, file=sys.stderr)
        return _serve_stdio(_locked_on_config(flags, text))
    logging.getLogger().setLevel(settings.log_level)
    if getattr(args, "show_config", False):
        import json

        print(json.dumps(settings.public_view(), indent=2), file=sys.stderr)
        return 0
    if check:
        return run_check(settings)
    if http is not None:
        from binance_mcp.service.run import HttpOptions, run_http

        quiet_fastmcp()
        return run_http(settings, HttpOptions(http, args.allow_remote, args.tls_cert, args.tls_key,
                                              args.behind_tls_proxy, args.allowed_host, args.allowed_origin))
    from binance_mcp.policy.loader import PolicyLoadError
    from binance_mcp.server import build_locked_server, build_server
    from binance_mcp.store import start_problem

    too_new = start_problem(settings.state_dir / "state.db", settings.state_url)
    if too_new:  # no server on a store a newer binance-mcp migrated: exit 2 (nothing to show, nothing to lock)
        print(f"binance-mcp serve: {settings.redact(too_new)}", file=sys.stderr)
        return 2
    try:
        mcp = build_server(settings)
    except PolicyLoadError as exc:
        print(f"binance-mcp serve: the policy cannot be loaded:\n{exc}\n{LOCKED_NOTE}", file=sys.stderr)
        mcp = build_locked_server(settings, POLICY_LOCK.format(errors=exc), policy=f"{exc.path} (not loaded)",
                                  exchange=settings.mode)
    except ConfigError as exc:
        text = settings.redact(str(exc))
        print(f"binance-mcp serve: {text}\n{LOCKED_NOTE}", file=sys.stderr)
        mcp = build_locked_server(settings, CONFIG_LOCK.format(error=text), policy="not loaded",
                                  exchange=settings.mode)
    state_error = mcp.binance_deps.state_error
    if state_error:
        print(f"binance-mcp serve: {state_error}", file=sys.stderr)
    return _serve_stdio(mcp)


LOCKED_NOTE = ("binance-mcp serve: starting LOCKED: only binance_policy_status is listed (it shows this error), every "
               "other call is refused with POLICY_ERROR and nothing reaches the exchange. Fix it and restart the "
               "server; `binance-mcp serve --check` exits 2 on it instead.")
POLICY_LOCK = ("the policy cannot be loaded, so this server is locked: no tool but binance_policy_status runs and "
               "nothing reaches the exchange. Ask the user to fix the policy file as the errors below say (each names "
               "the file, line and key; `binance-mcp policy check FILE` shows them too) and to restart the server:\n"
               "{errors}")
CONFIG_LOCK = ("the configuration cannot be loaded, so this server is locked: no tool but binance_policy_status "
               "runs and nothing reaches the exchange. Ask the user to fix this setting (an environment variable of "
               "the server, or its flag) and to restart the server: {error}")


def run_connect(args: argparse.Namespace) -> int:
    """The stdio bridge: check the URL and the token file (exit 2 with the reason on stderr), then serve."""
    import os

    os.environ["FASTMCP_SHOW_SERVER_BANNER"] = "false"  # stdout is the MCP channel, as for serve
    os.environ["FASTMCP_CHECK_FOR_UPDATES"] = "off"
    os.environ.setdefault("FASTMCP_ENV_FILE", os.devnull)
    from binance_mcp.service.bridge_setup import BridgeSetupError, check_url, read_token

    try:
        url = check_url(args.url)
        token = read_token(args.token_file)
    except BridgeSetupError as exc:
        print(f"binance-mcp connect: {exc}", file=sys.stderr)
        return 2
    if token.warning:
        print(f"binance-mcp connect: {token.warning}", file=sys.stderr)
    level = os.environ.get("BINANCE_MCP_LOG_LEVEL", "").strip().upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR"):  # as for serve; the bridge has no other settings
        logging.getLogger().setLevel(level)
    from binance_mcp.service.bridge import build_bridge

    return _serve_stdio(build_bridge(url, token, args.token_file))


def _serve_stdio(mcp) -> int:
    quiet_fastmcp()
    mcp.run(transport="stdio", show_banner=False)
    return 0


def _env_secrets() -> list[str]:
    import os

    names = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_SECRET_KEY", "BINANCE_API_PRIVATE_KEY_PASSPHRASE")
    return [value for value in (os.environ.get(n, "").strip() for n in names) if value]


def _env_redact(text: str) -> str:
    """Before the settings exist, the keys are scrubbed from a message straight from the environment."""
    from binance_mcp.settings import redact

    return redact(text, _env_secrets())


def _locked_on_config(flags: dict, text: str):
    """A locked server when the settings themselves could not be loaded: safe defaults (paper, no keys, no policy;
    nothing runs anyway), on the state directory asked for when it can be told, for the audit log."""
    import os
    from pathlib import Path

    from binance_mcp.server import build_locked_server
    from binance_mcp.settings import Settings

    given = flags.get("state_dir") or os.environ.get("BINANCE_MCP_STATE_DIR", "").strip()
    settings = Settings(state_dir=Path(str(given)).expanduser()) if given else Settings()
    mcp = build_locked_server(settings, CONFIG_LOCK.format(error=text), policy="not loaded (configuration error)",
                              exchange="not configured", redact=_env_redact)
    if mcp.binance_deps.state_error:
        print(f"binance-mcp serve: {mcp.binance_deps.state_error}", file=sys.stderr)
    return mcp


def run_check(settings) -> int:
    """``serve --check``: what ``serve`` would find at start-up, as an exit code (the old fail-fast, for scripts)."""
    from binance_mcp.paths import state_dir_problem
    from binance_mcp.policy.loader import PolicyLoadError, builtin, load_file

    try:  # as server.load_policy does, without importing FastMCP (a check is run by scripts: it should be quick)
        loaded = load_file(settings.policy) if settings.policy else builtin("read-only")
    except PolicyLoadError as exc:
        print(f"binance-mcp serve --check: the policy cannot be loaded (serve would start locked):\n{exc}",
              file=sys.stderr)
        return 2
    from binance_mcp.store import start_problem

    problem = state_dir_problem(settings.state_dir) or start_problem(settings.state_dir / "state.db",
                                                                     settings.state_url, strict=True)
    if problem:
        print(f"binance-mcp serve --check: {settings.redact(problem)}", file=sys.stderr)
        return 2
    signing = f", {settings.key_type} key (from the {settings.secret_source})" if settings.key_type else ""
    print(f"binance-mcp serve --check: ready: policy {loaded.source} ({loaded.sha256}), {settings.mode} mode{signing}, "
          f"state directory {settings.state_dir}", file=sys.stderr)
    return 0


def quiet_fastmcp() -> None:
    """FastMCP gives its ``fastmcp`` logger a handler of its own at INFO ("Starting MCP server ... with transport
    'stdio'" on every start): route it through ours instead, so that BINANCE_MCP_LOG_LEVEL (WARNING by default)
    decides what reaches stderr, in one format. FastMCP also logs "Error calling tool ..." at ERROR for every error
    result a tool returns on purpose (a policy denial, an exchange rejection: the agent's answer, and in the audit
    log): those count as INFO. A tool that crashed is still an error, with its traceback."""
    fastmcp_log = logging.getLogger("fastmcp")
    for handler in fastmcp_log.handlers[:]:
        fastmcp_log.removeHandler(handler)
    fastmcp_log.setLevel(logging.NOTSET)
    fastmcp_log.propagate = True
    server_log = logging.getLogger("fastmcp.server.server")
    if not any(isinstance(f, _ToolErrorsAreAnswers) for f in server_log.filters):
        server_log.addFilter(_ToolErrorsAreAnswers())


class _ToolErrorsAreAnswers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or not str(record.msg).startswith("Error calling tool"):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(logging.INFO)


def serve_main() -> int:
    """Entry point of ``binance-mcp-policy``: the same as ``binance-mcp serve``."""
    return main(["serve", *sys.argv[1:]])
