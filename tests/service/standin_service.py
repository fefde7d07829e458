"""STAND-IN for ``binance-mcp serve --http`` (the lead's service, not merged yet): the real server
(``build_server`` with the settings from the environment, so paper mode without keys) over MCP Streamable HTTP at
/mcp on 127.0.0.1, behind a tiny bearer-token check. Only the tests use it; replace it with the real command once
it lands. Usage: ``python standin_service.py PORT TOKEN_FILE``. The token file is read on every request, so a test
can "revoke" the agent by rewriting it.
"""

from __future__ import annotations

import hmac
import sys
from pathlib import Path

import uvicorn

from binance_mcp.cli import quiet_fastmcp
from binance_mcp.server import build_server
from binance_mcp.settings import load_settings


class BearerCheck:
    """ASGI: every HTTP request needs ``Authorization: Bearer <the token in the file>``; else 401 and nothing else."""

    def __init__(self, app, token_file: Path) -> None:
        self.app = app
        self.token_file = token_file

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            want = b"Bearer " + self.token_file.read_text(encoding="ascii").strip().encode()
            got = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(got, want):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b"unauthorized\n"})
                return
        await self.app(scope, receive, send)


def main() -> None:
    port, token_file = int(sys.argv[1]), Path(sys.argv[2])
    quiet_fastmcp()
    app = build_server(load_settings()).http_app(path="/mcp")
    uvicorn.run(BearerCheck(app, token_file), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
