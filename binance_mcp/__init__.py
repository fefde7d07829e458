"""binance-mcp: a Binance MCP server with a policy guard on every call."""

__version__ = "0.1.0"
