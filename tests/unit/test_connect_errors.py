"""How a failed connect is judged (chatd/db/bridge.py): wait for it, or stop and say why.
The missing database and role are also tested against a real PostgreSQL (tests/e2e)."""

from __future__ import annotations

import psycopg
import pytest

from chatd.db.bridge import connect_error
from chatd.errors import DatabaseMisconfigured, DatabaseUnavailable

PREFIX = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: '


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ('FATAL:  password authentication failed for user "chatd"', "user or password"),
        ("fe_sendauth: no password supplied", "needs a password"),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "chatd"', "pg_hba.conf"),
        ('FATAL:  role "chatd" is not permitted to log in', "ALTER ROLE"),
        ('FATAL:  permission denied for database "shop"', "GRANT CONNECT"),
    ],
)
def test_refusals_waiting_cannot_fix(message: str, hint: str) -> None:
    error = connect_error(psycopg.OperationalError(PREFIX + message))
    assert isinstance(error, DatabaseMisconfigured)
    assert str(error).startswith("PostgreSQL refuses chatd: ")
    assert hint in error.hint


@pytest.mark.parametrize(
    "message",
    [
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP"
        " connections?",
        "FATAL:  the database system is starting up",
        "FATAL:  sorry, too many clients already",
        "FATAL:  terminating connection due to administrator command",
    ],
)
def test_what_passes_is_waited_for(message: str) -> None:
    error = connect_error(psycopg.OperationalError(PREFIX + message))
    assert type(error) is DatabaseUnavailable
    assert str(error).startswith("cannot connect to PostgreSQL: ")
