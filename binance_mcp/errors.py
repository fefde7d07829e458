"""Errors by remedy: the agent must fix its input, retry later, or a human must act.

Every error the agent sees becomes a ``ToolError`` (an MCP tool result with ``isError: true``) in one place,
``tools/tool.py``; its text starts with a stable code and says what to do next. This module does not import
FastMCP, so the command-line tools that only need these classes start fast. Nothing here may carry a secret: messages pass
through ``settings.redact`` before they leave the process.
"""

from __future__ import annotations

FIX_INPUT = "fix_input"
RETRY_LATER = "retry_later"
HUMAN = "human"


class BinanceMcpError(Exception):
    """Base class: ``code`` (stable, upper-case) and ``remedy`` (one of the three above)."""

    code = "ERROR"
    remedy = HUMAN

    def __init__(self, message: str, *, code: str | None = None, remedy: str | None = None,
                 retry_after: float | None = None, details: dict | None = None) -> None:
        self.code = code or self.code
        self.remedy = remedy or self.remedy
        self.retry_after = retry_after
        self.details = details or {}
        self.message = message
        super().__init__(f"{self.code}: {message}")


class InputError(BinanceMcpError):
    """The call's arguments are wrong; nothing was sent to the exchange."""

    code = "INVALID_INPUT"
    remedy = FIX_INPUT


class ExchangeRejected(BinanceMcpError):
    """Binance answered with an error code; the message says what it means and what to do."""

    code = "EXCHANGE_REJECTED"
    remedy = FIX_INPUT

    def __init__(self, message: str, *, binance_code: int | None = None, http_status: int | None = None,
                 remedy: str = FIX_INPUT, retry_after: float | None = None) -> None:
        self.binance_code = binance_code
        self.http_status = http_status
        super().__init__(message, remedy=remedy, retry_after=retry_after)


class UnknownSymbol(ExchangeRejected):
    """Binance does not list the symbol on that market (-1121): the same code as the server's own symbol check
    (``Exchange.symbol_info``), so every tool says UNKNOWN_SYMBOL for a symbol that does not exist."""

    code = "UNKNOWN_SYMBOL"


class ExchangeUnavailable(BinanceMcpError):
    """The exchange could not be reached, timed out, or answered with something that is not Binance JSON.

    ``request_sent`` is False only when no connection could be made (so the request surely did not arrive).
    """

    code = "EXCHANGE_UNAVAILABLE"
    remedy = RETRY_LATER

    def __init__(self, request_sent: bool, message: str) -> None:
        self.request_sent = request_sent
        super().__init__(message)


class OrderStatusUnknown(BinanceMcpError):
    """An order request may or may not have reached the exchange; the client order id says which to check."""

    code = "ORDER_STATUS_UNKNOWN"
    remedy = HUMAN


class InternalError(BinanceMcpError):
    """The server itself failed on a call (a bug): reported with a code instead of a bare, masked message."""

    code = "INTERNAL_ERROR"
    remedy = HUMAN


class ConfigError(Exception):
    """Start-up configuration is wrong; the message says which setting to change."""
