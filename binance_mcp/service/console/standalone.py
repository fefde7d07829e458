"""``binance-mcp console``: the console in a process of its own, for a stdio server's state directory. It reads the
same settings (BINANCE_MCP_*), so it sees the same policy, state store and audit log; the servers read the kill flag,
the approvals and the confirmations from the store on their next call.

Flatten needs the exchange: in testnet or live mode this process builds an adapter of its own from the same keys; in
paper mode it cannot (flatten.py says why) and the page says so."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from binance_mcp.service.console import PREFIX, ConsoleGate
from binance_mcp.service.http import service_hosts


def standalone_backend(settings):
    from binance_mcp.policy.audit import AuditLog
    from binance_mcp.policy.loader import load_file
    from binance_mcp.policy.recorder import Recorder
    from binance_mcp.server import account_id, load_policy
    from binance_mcp.service.console.backend import ConsoleBackend

    recorder = Recorder(AuditLog(settings.state_dir / "audit.jsonl", settings.redact), settings.redact)
    loop = asyncio.get_running_loop()

    async def policy():
        return await loop.run_in_executor(None, load_policy, settings)

    async def agent_policy(path: str):
        return await loop.run_in_executor(None, load_file, Path(path))

    flatten, why = None, None
    closers = [recorder.close]
    if settings.mode == "paper":
        why = ("Flatten is not available in this standalone console in paper mode: the paper exchange lives inside "
               "the stdio server's process. Turn the kill switch on here, then ask the agent (or use its client) to "
               "cancel the open orders and close the positions; or run the service (serve --http), whose console "
               "flattens.")
    else:
        from binance_mcp.exchange.client import Exchange
        from binance_mcp.service.console.flatten import Flattener

        exchange = Exchange(settings)
        flatten = Flattener(exchange)
        closers.append(exchange.close)
    return ConsoleBackend(settings.state_dir, account_id(settings), policy, agent_policy, recorder.safe,
                          flatten=flatten, flatten_unavailable=why, closers=closers)


async def serve_standalone(settings, host: str, port: int) -> int:
    import uvicorn

    from binance_mcp.service.console.app import build_app
    from binance_mcp.service.run import _bind, _server_class, _StartError

    backend = standalone_backend(settings)
    try:
        sock = _bind(host, port)
    except _StartError as exc:
        await backend.close()
        print(f"binance-mcp console: {str(exc).replace('--http', '--listen')}", file=sys.stderr)
        return 2
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = ConsoleGate(build_app(backend), service_hosts(host, []), f"http://{shown}:{bound}")
    server = _server_class()(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    print(f"binance-mcp console listening on http://{shown}:{bound}{PREFIX} (state directory {settings.state_dir}, "
          f"{settings.mode} mode); log in with the password from `binance-mcp console set-password` or a link from "
          "`binance-mcp console login-link`", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.serve(sockets=[sock])
    finally:
        await backend.close()
        sock.close()
    return 0
