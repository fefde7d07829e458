"""The baseline of http_load.py: a bare FastMCP server with one trivial tool, over MCP Streamable HTTP.

    python bench/bare_http_server.py [--nodelay]   (binds 127.0.0.1 on a free port and prints "listening on <url>"
                                                    on stderr; bench/http_load.py starts it itself)

Served the way ``binance-mcp serve --http`` serves ours (binance_mcp/service/run.py): FastMCP's ``http_app`` at
``/mcp`` under uvicorn, log level warning, no access log, on a socket bound by the service's own ``_bind`` (so a
change to its socket options applies to both); nothing else (no token check, no Host or Origin check, no body cap,
no guard). ``--nodelay``: TCP_NODELAY on that socket, as ``bench/ours_variant.py --nodelay`` does for ours.
"""

import asyncio
import socket
import sys

import _common  # noqa: F401 - the tree measured on sys.path, no bytecode written
import uvicorn
from fastmcp import FastMCP

from binance_mcp.service.run import _bind

mcp = FastMCP("bare")


@mcp.tool
def price(symbol: str) -> str:
    """A constant: the baseline's tool does no work of its own."""
    return "97000.00"


async def main() -> None:
    sock = _bind("127.0.0.1", 0)
    if "--nodelay" in sys.argv[1:]:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    config = uvicorn.Config(mcp.http_app(path="/mcp"), log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2, access_log=False)
    print(f"bare FastMCP server listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", file=sys.stderr,
          flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
