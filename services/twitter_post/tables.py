"""Tables of the post database, as SQLAlchemy Core objects for queries (migrations create them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

from twitter_shared.tables import add_shared_tables

metadata = MetaData()
shared = add_shared_tables(metadata)
outbox = shared["outbox"]
consumer_cursors = shared["consumer_cursors"]
consumer_leases = shared["consumer_leases"]

statuses = Table(
    "statuses",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("in_reply_to_id", BigInteger),
    Column("in_reply_to_account_id", BigInteger),
    # A reblog is a status of its own whose text is empty and which points at the original.
    Column("reblog_of_id", BigInteger),
    Column("visibility", String(16), nullable=False),
    Column("spoiler_text", Text, nullable=False),
    Column("sensitive", Boolean, nullable=False),
    Column("language", String(16)),
    Column("replies_count", Integer, nullable=False),
    Column("reblogs_count", Integer, nullable=False),
    Column("favourites_count", Integer, nullable=False),
)

mentions = Table(
    "mentions",
    metadata,
    Column("status_id", BigInteger, ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", BigInteger, primary_key=True),
    Column("username", String(30), nullable=False),
)

favourites = Table(
    "favourites",
    metadata,
    Column("status_id", BigInteger, ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", BigInteger, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("key", String(200), primary_key=True),
    # SHA-256 of the request's fields: a repeat must be the same request, not only the same key.
    Column("request_hash", String(64), nullable=False),
    Column("status_id", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

account_stats = Table(
    "account_stats",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("statuses_count", Integer, nullable=False),
    Column("last_status_at", DateTime(timezone=True)),
)
