"""``python -m binance_mcp`` (and ``python binance_mcp/__main__.py``, the MCP Bundle's entry point file)."""

import os
import sys

if not __package__:  # run as a file: import the package from its parent directory, not its modules from here
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.path.insert(0, os.path.dirname(_here))

from binance_mcp.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
