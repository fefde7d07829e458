"""Start ``binance-mcp serve --http``: check the binding, load everything (failing fast: a service that cannot trade
safely exits with the error, unlike the stdio server, which starts locked so a client can show why), run the key
check, then serve the app with uvicorn on a socket bound here (so port 0 gives a free port, printed at start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from dataclasses import dataclass, field

from binance_mcp.service.http import (
    MCP_PATH,
    AuthFailures,
    ServiceGate,
    check_origin,
    is_loopback,
    parse_bind,
    service_hosts,
)

log = logging.getLogger("binance_mcp.service")


@dataclass
class HttpOptions:
    bind: str
    allow_remote: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    behind_tls_proxy: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)

    def check(self) -> tuple[str, int]:
        """(host, port), or ValueError saying what to change."""
        host, port = parse_bind(self.bind)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together: give both (the certificate chain and its key, "
                             "PEM files)")
        if self.tls_cert and self.behind_tls_proxy:
            raise ValueError("choose one of --tls-cert/--tls-key (TLS in this server) and --behind-tls-proxy "
                             "(a proxy in front terminates TLS)")
        if not is_loopback(host):
            if not self.allow_remote:
                raise ValueError(f"refusing to listen on {host}, which is not a loopback address: agents' tokens and "
                                 "orders would cross the network. Add --allow-remote together with --tls-cert/"
                                 "--tls-key, or with --behind-tls-proxy when a TLS proxy is in front (see "
                                 "docs/deployment.md); or listen on 127.0.0.1")
            if not (self.tls_cert or self.behind_tls_proxy):
                raise ValueError(f"--allow-remote on {host} needs TLS: add --tls-cert FILE --tls-key FILE, or "
                                 "--behind-tls-proxy when a TLS-terminating proxy is in front (see docs/deployment.md)")
        for origin in self.allowed_origins:
            check_origin(origin)
        for path in (self.tls_cert, self.tls_key):
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{path} cannot be read (a TLS file): check the path and that this user may read it")
        return host, port


def run_http(settings, options: HttpOptions) -> int:
    """``serve --http``: 0 on a clean stop, 2 (with the error on stderr) when it cannot start."""
    from binance_mcp.errors import ConfigError
    from binance_mcp.paths import state_dir_problem
    from binance_mcp.policy.loader import PolicyLoadError
    from binance_mcp.server import build_server

    try:
        host, port = options.check()
    except ValueError as exc:
        return _fail(str(exc))
    from binance_mcp.store import start_problem

    problem = state_dir_problem(settings.state_dir) or start_problem(settings.state_dir / "state.db",
                                                                     settings.state_url)
    if problem:
        return _fail(settings.redact(problem))
    _warn_open_state_dir(settings.state_dir)
    try:
        mcp = build_server(settings, service=True)
    except PolicyLoadError as exc:
        return _fail(f"the policy cannot be loaded (the service does not start without one):\n{exc}")
    except ConfigError as exc:
        return _fail(settings.redact(str(exc)))
    try:
        return asyncio.run(_serve(mcp, settings, options, host, port))
    except _StartError as exc:
        return _fail(settings.redact(str(exc)))


class _StartError(Exception):
    pass


async def _serve(mcp, settings, options: HttpOptions, host: str, port: int) -> int:
    import uvicorn
    from starlette.middleware import Middleware

    from binance_mcp.exchange.keycheck import check_at_startup

    guard = mcp.binance_guard
    exchange = mcp.binance_deps.exchange
    if exchange.keycheck.needed:  # a service may use the network at start: a key that may withdraw stops it here
        try:
            await check_at_startup(exchange)
        except Exception as exc:  # noqa: BLE001 - any failure of the check: do not serve (fail closed)
            await exchange.close()
            raise _StartError(f"the API key check failed: {getattr(exc, 'message', None) or exc}") from None
    failures = AuthFailures(guard.recorder.safe)
    scheme = "https" if options.tls_cert or options.behind_tls_proxy else "http"
    from binance_mcp.service.console import service_backend
    from binance_mcp.service.console.app import build_app

    console = service_backend(mcp, secure=scheme == "https")
    gate = Middleware(ServiceGate, authenticate=guard.authenticate, failures=failures,
                      hosts=service_hosts(host, options.allowed_hosts), origins=tuple(options.allowed_origins),
                      scheme=scheme, console=build_app(console))
    app = mcp.http_app(path=MCP_PATH, middleware=[gate], host_origin_protection=False)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2,
                            ssl_certfile=options.tls_cert, ssl_keyfile=options.tls_key, access_log=False)
    server = _server_class()(config)
    shown = f"[{host}]" if ":" in host else host
    if settings.console_url is None:  # approval links point at this service's own console
        guard.approver.console_url = f"{scheme}://{shown}:{bound}/console"
    agents = await guard.store.run(guard.state.agents)
    active = sum(1 for a in agents if a.active)
    listening = "https" if options.tls_cert else "http"  # behind a TLS proxy this server itself speaks http
    print(f"binance-mcp service listening on {listening}://{shown}:{bound}{MCP_PATH} "
          f"({settings.mode} mode, {active} active agent{'s' if active != 1 else ''}; "
          f"add one with: binance-mcp agents add NAME); the console at {listening}://{shown}:{bound}/console",
          file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # a clean stop: the last summary of failed logins is written
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.serve(sockets=[sock])
    finally:
        await failures.flush()
        await console.close()
        sock.close()
    return 0


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server without its own signal handling (which re-raises SIGTERM once it has stopped, killing the
        process before the service's last words): ``stop`` is called from our handlers instead."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

        def stop(self) -> None:
            self.should_exit = True

    return Server


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux): without it a response written in two parts waits for the client's
    # delayed ACK, about 40 ms per call (bench/http_load.py --agents 1).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _StartError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --http address "
                          "or stop what uses it") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _warn_open_state_dir(path) -> None:
    """The state directory holds the agents' token hashes, the approvals and the audit: others should not read it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the state directory %s can be read or entered by other users (mode %o); make it 0700 and "
                    "owned by the service's user (docs/deployment.md)", path, stat.S_IMODE(mode))


def _fail(text: str) -> int:
    print(f"binance-mcp serve --http: {text}", file=sys.stderr)
    return 2
