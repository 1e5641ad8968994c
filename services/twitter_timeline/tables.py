"""Tables of the timeline database, as SQLAlchemy Core objects for queries (migrations create them).

Everything here can be regenerated from the account and post services with
``twitter-system rebuild-timelines``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, Table

from twitter_shared.tables import add_shared_tables

metadata = MetaData()
shared = add_shared_tables(metadata)
consumer_cursors = shared["consumer_cursors"]
consumer_leases = shared["consumer_leases"]

home_entries = Table(
    "home_entries",
    metadata,
    Column("owner_id", BigInteger, primary_key=True, autoincrement=False),
    Column("status_id", BigInteger, primary_key=True, autoincrement=False),
    # Who posted (or reblogged) the status: an unfollow removes that author's entries.
    Column("author_id", BigInteger, nullable=False),
    Column("reblog_of_id", BigInteger),
    # The primary key is the only index: removals find their owners through the follow mirror.
    sqlite_with_rowid=False,
)

follow_mirror = Table(
    "follow_mirror",
    metadata,
    Column("followee_id", BigInteger, primary_key=True, autoincrement=False),
    Column("follower_id", BigInteger, primary_key=True, autoincrement=False),
)
