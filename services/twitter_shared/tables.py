"""Tables every database has: the event outbox, consumer cursors and leases, id worker leases.

Each service's own tables live in its package; these are shared so the outbox and
consumer code can be written once. The migrations create them explicitly.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text


def add_shared_tables(metadata: MetaData) -> dict[str, Table]:
    outbox = Table(
        "outbox",
        metadata,
        # Positions are handed out in commit order (see twitter_shared.outbox.append_event).
        Column("position", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
        Column("kind", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    consumer_cursors = Table(
        "consumer_cursors",
        metadata,
        Column("source", String(64), primary_key=True),
        Column("position", BigInteger, nullable=False),
    )
    consumer_leases = Table(
        "consumer_leases",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
    )
    worker_leases = Table(
        "worker_leases",
        metadata,
        Column("worker_id", Integer, primary_key=True, autoincrement=False),
        Column("holder", String(200), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
    )
    return {
        "outbox": outbox,
        "consumer_cursors": consumer_cursors,
        "consumer_leases": consumer_leases,
        "worker_leases": worker_leases,
    }


# The same tables on a metadata of their own, for the shared code's queries (ids, consumer leases).
shared_tables = add_shared_tables(MetaData())
