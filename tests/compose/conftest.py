"""Markers of the Compose tests; `make test` leaves them out with `-m "not compose"`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compose: needs the Compose programs; the end-to-end tests start a private Docker engine as root"
    )
