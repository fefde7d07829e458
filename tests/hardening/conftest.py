"""Prints the hardening counts (fuzzed inputs, trick cases, fault scenarios) at the end of the run."""

from __future__ import annotations

from tests.hardening.helpers import COUNTS


def pytest_terminal_summary(terminalreporter) -> None:
    if not COUNTS:
        return
    terminalreporter.write_sep("-", "hardening counts")
    for key in sorted(COUNTS):
        terminalreporter.write_line(f"{key}: {COUNTS[key]}")
