"""`binance-mcp serve` with one part switched off, for ablation measurements (call_overhead.py, growth.py,
reads_next_to_orders.py).

Nothing in binance_mcp/ is changed: the switches patch the running process only. The server imports the tree
that BENCH_TREE names (set by _common.bench_env; default: the tree this script is in).

    python bench/ours_variant.py [--no-fsync] [--no-guard] [--nodelay] [--profile FILE] [serve flags...]

  --no-fsync      the audit log is written and flushed but not fsynced (binance_mcp.policy.audit uses os.fsync)
  --no-guard      build_server gets the OpenGuard (no policy, no facts, no state, no audit): FastMCP + our tools
  --nodelay       `serve --http` only: TCP_NODELAY on the listening socket (binance_mcp.service.run._bind), so
                  every accepted connection has it (Linux): without it, a response written in two parts waits
                  for the client's delayed ACK, about 40 ms (http_load.py)
  --profile FILE  run the server under cProfile and write the stats to FILE when it exits (stdin closed); the
                  profiler starts at the 21st tool call, so one-time imports and caches are left out. It sees
                  the event loop's thread only: since 604d816 the guard's SQLite work runs in a worker thread and
                  the audit writes (and their fsync) in another, which the profile does not show
"""

from __future__ import annotations

import sys

import _common  # noqa: F401 - repository on sys.path, no bytecode written


def main() -> int:
    argv = sys.argv[1:]
    profile = None
    if "--profile" in argv:
        i = argv.index("--profile")
        profile = argv[i + 1]
        del argv[i:i + 2]
    if "--no-fsync" in argv:
        argv.remove("--no-fsync")
        import binance_mcp.policy.audit as audit

        class _Os:  # the audit module's view of os, without fsync
            def __getattr__(self, name):
                import os

                return getattr(os, name)

            @staticmethod
            def fsync(fd: int) -> None:
                return None

        audit.os = _Os()
    if "--no-guard" in argv:
        argv.remove("--no-guard")
        import binance_mcp.server as server

        server.make_guard = lambda settings, exchange: server.OpenGuard()
    if "--nodelay" in argv:
        argv.remove("--nodelay")
        import socket

        import binance_mcp.service.run as run

        bind = run._bind

        def bind_nodelay(host: str, port: int) -> socket.socket:
            sock = bind(host, port)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        run._bind = bind_nodelay
    from binance_mcp.cli import main as cli_main

    if profile is None:
        return cli_main(["serve", *argv])
    import cProfile

    try:
        from binance_mcp.tools.tool import BinanceTool
    except ImportError:  # a tree from before the split of tools/base.py (c5d75df)
        from binance_mcp.tools.base import BinanceTool

    prof = cProfile.Profile()
    seen = [0]
    run = BinanceTool.run

    async def counted(self, arguments):
        seen[0] += 1
        if seen[0] == 21:
            prof.enable()
        return await run(self, arguments)

    BinanceTool.run = counted
    try:
        return cli_main(["serve", *argv])
    finally:
        prof.disable()
        prof.dump_stats(profile)


if __name__ == "__main__":
    raise SystemExit(main())
