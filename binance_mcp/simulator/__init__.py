"""An embedded Binance exchange simulator (spot and USD-M futures) speaking Binance REST over HTTP.

The real python-binance client talks to it on 127.0.0.1, so paper mode and every test exercise the
same signing, parameter names, endpoints and error parsing as live trading. Start one with
``binance_mcp.simulator.runner.start_in_thread`` or ``binance-mcp simulator``.
"""
