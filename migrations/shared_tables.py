"""Migration helpers for the tables every database has (outbox, cursors, leases)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_shared_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column("position", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consumer_cursors",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "consumer_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "worker_leases",
        sa.Column("worker_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_shared_tables() -> None:
    for table in ("worker_leases", "consumer_leases", "consumer_cursors", "outbox"):
        op.drop_table(table)
