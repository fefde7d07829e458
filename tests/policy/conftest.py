"""Fixtures of the tests that trade one exchange account from several servers (tests/policy/account.py)."""

from tests.policy.account import acct, binance, exchange  # noqa: F401
