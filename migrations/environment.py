"""The body of every history's ``env.py``: run migrations on the connection the caller passes in.

``twitter_shared.migrate`` opens the connection (and the lock around it), so
Alembic never creates its own engine and the same code serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `twitter-system migrate`, which supplies the connection")
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
