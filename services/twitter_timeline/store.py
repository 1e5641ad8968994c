"""Home timeline storage: fan-out, merges and removals, pages, and the per-owner cap.

Every write is idempotent (``ON CONFLICT DO NOTHING`` inserts, deletes by key)
because an event batch is replayed after a crash. The cap is enforced by a
periodic trim over the owners above it, not on each fan-out, so a post costs one
INSERT ... SELECT however many followers its author has.

Entries are indexed by owner only. An entry whose author is A is only ever in A's
own timeline and in the timelines of A's followers in the mirror: fan-out and
merges write only there, and an unfollow removes the author's entries from the
follower's timeline. So removals of A's statuses look in those timelines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import BigInteger, delete, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_shared.database import read_only, scalars_off_loop, transaction
from twitter_shared.driver_query import DriverQuery, execute, fetch_rows
from twitter_shared.pagination import PageRequest, bound_sql
from twitter_shared.sqlite_inline import InlineConnection
from twitter_timeline.tables import follow_mirror, home_entries

# Arbitrary but fixed: the advisory lock that serialises the two consumers' batches on PostgreSQL.
APPLY_LOCK_KEY = 7_411_101


@dataclass(frozen=True)
class Entry:
    """One status in one home timeline."""

    owner_id: int
    status_id: int
    author_id: int
    reblog_of_id: int | None

    def row(self) -> dict[str, int | None]:
        return {
            "owner_id": self.owner_id,
            "status_id": self.status_id,
            "author_id": self.author_id,
            "reblog_of_id": self.reblog_of_id,
        }


@dataclass(frozen=True)
class StatusRef:
    """A status as the post service lists it for fan-out: id, author, original if a reblog."""

    status_id: int
    author_id: int
    reblog_of_id: int | None

    @classmethod
    def from_json(cls, data: dict) -> StatusRef:
        reblog_of = data.get("reblog_of_id")
        return cls(int(data["id"]), int(data["account_id"]), int(reblog_of) if reblog_of is not None else None)


def _insert_ignoring_duplicates(connection: AsyncConnection, table):  # noqa: ANN001, ANN202 - both dialects' Insert
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


async def serialise_batches(connection: AsyncConnection) -> None:
    """Make the caller's transaction the only batch in progress until it ends.

    A follow's merge reads the post service and a post's fan-out reads the mirror;
    run side by side, a post made between the merge's read and the mirror's commit
    would reach neither. On SQLite the lease renewal that opens each batch already
    holds the database's single write lock; PostgreSQL needs this advisory lock.
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})


async def insert_entries(connection: AsyncConnection, entries: list[Entry]) -> None:
    if entries:
        await connection.execute(_insert_ignoring_duplicates(connection, home_entries), [e.row() for e in entries])


# The author's own timeline and every follower's, in one statement.
FAN_OUT = DriverQuery(
    "INSERT INTO home_entries (owner_id, status_id, author_id, reblog_of_id)"
    " SELECT CAST(:author_id AS BIGINT), CAST(:status_id AS BIGINT), CAST(:author_id AS BIGINT),"
    " CAST(:reblog_of_id AS BIGINT)"
    " UNION ALL SELECT follower_id, CAST(:status_id AS BIGINT), CAST(:author_id AS BIGINT), CAST(:reblog_of_id AS BIGINT)"
    " FROM follow_mirror WHERE followee_id = :author_id"
    " ON CONFLICT DO NOTHING"
)


async def fan_out(connection: AsyncConnection, ref: StatusRef) -> None:
    """Put a new status into its author's timeline and every follower's."""
    await execute(connection, FAN_OUT, author_id=ref.author_id, status_id=ref.status_id, reblog_of_id=ref.reblog_of_id)


def _timelines_reached_by(author_id: int):  # noqa: ANN202 - a SQLAlchemy compound select
    """Select the owners whose timelines may hold the author's entries: the author and its followers."""
    return select(literal(author_id, BigInteger)).union_all(
        select(follow_mirror.c.follower_id).where(follow_mirror.c.followee_id == author_id)
    )


async def remove_status(connection: AsyncConnection, *, status_id: int, author_id: int) -> None:
    await connection.execute(
        delete(home_entries).where(
            home_entries.c.owner_id.in_(_timelines_reached_by(author_id)), home_entries.c.status_id == status_id
        )
    )


async def add_follow(connection: AsyncConnection, *, follower_id: int, followee_id: int, recent: list[StatusRef]) -> None:
    """Mirror a follow and merge the followee's recent statuses into the follower's timeline."""
    await connection.execute(
        _insert_ignoring_duplicates(connection, follow_mirror).values(follower_id=follower_id, followee_id=followee_id)
    )
    await insert_entries(connection, [Entry(follower_id, r.status_id, r.author_id, r.reblog_of_id) for r in recent])


async def remove_follow(connection: AsyncConnection, *, follower_id: int, followee_id: int) -> None:
    """Forget a follow and take the followee's statuses and reblogs out of the follower's timeline."""
    await connection.execute(
        delete(follow_mirror).where(follow_mirror.c.follower_id == follower_id, follow_mirror.c.followee_id == followee_id)
    )
    await connection.execute(
        delete(home_entries).where(home_entries.c.owner_id == follower_id, home_entries.c.author_id == followee_id)
    )


async def remove_account(connection: AsyncConnection, account_id: int) -> None:
    """Remove a deleted account's statuses from every timeline, its own timeline and its follows."""
    # This runs before the mirror rows are deleted, because they list the timelines that contain the account's statuses.
    await connection.execute(
        delete(home_entries).where(
            home_entries.c.owner_id.in_(_timelines_reached_by(account_id)), home_entries.c.author_id == account_id
        )
    )
    await connection.execute(delete(home_entries).where(home_entries.c.owner_id == account_id))
    await connection.execute(
        delete(follow_mirror).where((follow_mirror.c.follower_id == account_id) | (follow_mirror.c.followee_id == account_id))
    )


@functools.cache
def _page_query(shape: tuple[bool, bool, bool]) -> DriverQuery:
    return DriverQuery("SELECT status_id FROM home_entries WHERE owner_id = :owner_id" + bound_sql("status_id", shape))


async def timeline_page(engine: AsyncEngine, owner_id: int, *, page: PageRequest) -> list[str]:
    return (await timeline_pages(engine, [owner_id], page=page))[0]


@functools.cache
def _pages_query(shape: tuple[bool, bool, bool]) -> DriverQuery:
    """Build the PostgreSQL statement that reads every owner's page at once.

    Rows come newest first within each owner, each with its owner's place in the list (from 1).
    """
    return DriverQuery(
        "SELECT owners.place, page.status_id"
        " FROM unnest(CAST(:owner_ids AS BIGINT[])) WITH ORDINALITY AS owners (owner_id, place)"
        " CROSS JOIN LATERAL (SELECT status_id FROM home_entries WHERE owner_id = owners.owner_id"
        + bound_sql("status_id", shape)
        + ") AS page ORDER BY owners.place, page.status_id DESC"
    )


async def timeline_pages(engine: AsyncEngine, owner_ids: list[int], *, page: PageRequest) -> list[list[str]]:
    """Return the same page of each owner's timeline, in the order of ``owner_ids``, from one read."""
    bounds = page.bound_values()
    pages: list[list[str]] = []
    async with read_only(engine) as connection:
        if not isinstance(connection, InlineConnection):
            # On PostgreSQL each statement is a round trip, which costs more than reading a page.
            pages = [[] for _ in owner_ids]
            for place, status_id in await fetch_rows(connection, _pages_query(page.shape), owner_ids=owner_ids, **bounds):
                pages[place - 1].append(str(status_id))
            return pages
        query = _page_query(page.shape)
        for owner_id in owner_ids:
            rows = await fetch_rows(connection, query, owner_id=owner_id, **bounds)
            pages.append([str(status_id) for (status_id,) in page.newest_first(rows)])
        return pages


async def owners_over_cap(engine: AsyncEngine, *, cap: int) -> list[int]:
    # A scan of every entry: 150 ms on SQLite with the whole dataset loaded, too long for the event loop.
    statement = select(home_entries.c.owner_id).group_by(home_entries.c.owner_id).having(func.count() > cap)
    return await scalars_off_loop(engine, statement)


async def trim_owner(engine: AsyncEngine, owner_id: int, *, cap: int) -> int:
    """Delete the owner's entries older than its ``cap`` newest; return how many went."""
    async with transaction(engine) as connection:
        oldest_kept = await connection.scalar(
            select(home_entries.c.status_id)
            .where(home_entries.c.owner_id == owner_id)
            .order_by(home_entries.c.status_id.desc())
            .offset(cap - 1)
            .limit(1)
        )
        if oldest_kept is None:
            return 0
        trimmed = await connection.execute(
            delete(home_entries).where(home_entries.c.owner_id == owner_id, home_entries.c.status_id < oldest_kept)
        )
    return trimmed.rowcount


async def trim_timelines(engine: AsyncEngine, *, cap: int) -> int:
    """Cut every timeline above ``cap`` back to its newest ``cap`` entries; return entries removed."""
    removed = 0
    for owner_id in await owners_over_cap(engine, cap=cap):
        removed += await trim_owner(engine, owner_id, cap=cap)
    return removed
