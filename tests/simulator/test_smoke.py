"""A first end-to-end check: python-binance places, fills and cancels a spot order on the simulator."""

from decimal import Decimal


def test_spot_limit_order_locks_then_cancel_releases(client):
    order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="0.001", price="90000")
    assert order["status"] == "NEW"
    usdt = next(b for b in client.get_account()["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == Decimal("90")
    cancelled = client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert cancelled["status"] == "CANCELED"
    usdt = next(b for b in client.get_account()["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == 0 and Decimal(usdt["free"]) == Decimal("10000")
