"""The exchange adapter: python-binance ``AsyncClient`` (the only place that imports ``binance``), Binance error
translation, caches, time sync, and symbol-filter math."""
