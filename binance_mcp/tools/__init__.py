"""The tool families; ``all_tools()`` returns every ToolDef in catalogue order."""

from __future__ import annotations

from binance_mcp.catalog import TOOL_NAMES
from binance_mcp.tools.models import ToolDef


def all_tools() -> list[ToolDef]:
    from binance_mcp.tools import account, analysis, futures, market, spot

    defs = {t.name: t for module in (account, spot, futures, market, analysis) for t in module.TOOLS}
    missing = [n for n in TOOL_NAMES if n not in defs]
    extra = [n for n in defs if n not in TOOL_NAMES]
    if missing or extra:
        raise RuntimeError(f"tool modules and catalog disagree: missing {missing}, not in catalog {extra}")
    return [defs[n] for n in TOOL_NAMES]
