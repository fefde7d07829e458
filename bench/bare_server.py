"""The baseline server of call_overhead.py and cold_start.py: a bare FastMCP server with one trivial tool.

    /work/venv/bin/python bench/bare_server.py   (speaks MCP over stdio; the benchmarks start it themselves)
"""

from fastmcp import FastMCP

mcp = FastMCP("bare")


@mcp.tool
def echo(x: str) -> str:
    return x


if __name__ == "__main__":
    mcp.run(show_banner=False)
