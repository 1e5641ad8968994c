"""Report the propagation times the end-to-end tests measured, at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    measured = [
        (name, value)
        for report in terminalreporter.stats.get("passed", [])
        for name, value in report.user_properties
        if name.startswith("propagation_")
    ]
    if measured:
        terminalreporter.section("propagation times (real processes, embedded mode)")
        for name, value in measured:
            terminalreporter.write_line(f"{name}: {value}")
