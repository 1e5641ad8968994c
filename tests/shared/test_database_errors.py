"""Which database errors become a quick 503 (``Unavailable``) and which propagate as programming errors."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from twitter_shared.database import _unavailable_on_connection_errors
from twitter_shared.errors import Unavailable


class DriverError(Exception):
    """An error of the shape SQLAlchemy's asyncpg adapter raises: it carries the PostgreSQL SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def raise_wrapped(sqlstate: str) -> None:
    with _unavailable_on_connection_errors():
        raise DBAPIError("SELECT 1", {}, DriverError(sqlstate))


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "08006", "08001"],
    ids=["starting-or-stopping", "admin-shutdown", "connection-failure", "cannot-connect"],
)
def test_server_side_failure_becomes_unavailable(sqlstate: str) -> None:
    with pytest.raises(Unavailable):
        raise_wrapped(sqlstate)


@pytest.mark.parametrize("sqlstate", ["23505", "42P01", "40P01"], ids=["unique-violation", "missing-table", "deadlock"])
def test_statement_error_propagates(sqlstate: str) -> None:
    with pytest.raises(DBAPIError):
        raise_wrapped(sqlstate)


def test_error_without_sqlstate_propagates() -> None:
    with pytest.raises(DBAPIError), _unavailable_on_connection_errors():
        raise DBAPIError("SELECT 1", {}, Exception("no code"))


def test_exhausted_pool_becomes_unavailable() -> None:
    with pytest.raises(Unavailable, match="busy"), _unavailable_on_connection_errors():
        raise PoolTimeout("QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 5.00")


@pytest.mark.parametrize("sqlstate", ["57P01", "08006"], ids=["admin-shutdown", "connection-failure"])
def test_driver_server_failure_becomes_unavailable(sqlstate: str) -> None:
    with pytest.raises(Unavailable), _unavailable_on_connection_errors():
        raise asyncpg.PostgresError.new({"C": sqlstate, "M": "terminating connection"})


def test_driver_statement_error_is_not_unavailable() -> None:
    with pytest.raises(asyncpg.PostgresError), _unavailable_on_connection_errors():
        raise asyncpg.PostgresError.new({"C": "42P01", "M": "relation does not exist"})
