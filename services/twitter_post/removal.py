"""Delete statuses with everything that hangs on them, keeping every counter exact.

One function serves a user's delete, an unreblog and the removal of a deleted
account's content: deleting a status deletes its reblogs, favourites, mentions
and idempotency keys, decrements the counters of the statuses that survive
(the parent's replies, the original's reblogs, the author's statuses) and
appends a ``status.deleted`` event for every status removed, in the caller's
transaction. Replies to a deleted status stay, as in Mastodon.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from twitter_post.tables import account_stats, favourites, idempotency_keys, mentions, outbox, statuses
from twitter_shared.outbox import append_event

# Ids per IN (...) list: far below SQLite's bound-parameter limit.
CHUNK = 500


def chunks(values: list[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def counts_towards_stats(visibility: str) -> bool:
    """Direct messages do not count in an author's statuses_count, as in Mastodon."""
    return visibility != "direct"


async def delete_statuses(connection: AsyncConnection, status_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Delete the statuses and their reblogs; return ``(id, account_id)`` of every status removed."""
    roots = sorted(set(status_ids))
    doomed_rows = []
    for part in chunks(roots):
        doomed_rows += list(
            await connection.execute(
                select(statuses.c.id, statuses.c.account_id, statuses.c.reblog_of_id, statuses.c.in_reply_to_id, statuses.c.visibility)
                .where((statuses.c.id.in_(part)) | (statuses.c.reblog_of_id.in_(part)))
            )
        )
    doomed = {row.id: row for row in doomed_rows}
    if not doomed:
        return []

    parents = Counter(row.in_reply_to_id for row in doomed.values() if row.in_reply_to_id and row.in_reply_to_id not in doomed)
    originals = Counter(row.reblog_of_id for row in doomed.values() if row.reblog_of_id and row.reblog_of_id not in doomed)
    authors = Counter(row.account_id for row in doomed.values() if counts_towards_stats(row.visibility))
    await _decrement(connection, statuses.c.id, statuses.c.replies_count, parents)
    await _decrement(connection, statuses.c.id, statuses.c.reblogs_count, originals)
    await _decrement(connection, account_stats.c.account_id, account_stats.c.statuses_count, authors)

    doomed_ids = sorted(doomed)
    for part in chunks(doomed_ids):
        await connection.execute(delete(favourites).where(favourites.c.status_id.in_(part)))
        await connection.execute(delete(mentions).where(mentions.c.status_id.in_(part)))
        await connection.execute(delete(idempotency_keys).where(idempotency_keys.c.status_id.in_(part)))
        await connection.execute(delete(statuses).where(statuses.c.id.in_(part)))
    for status_id in doomed_ids:
        row = doomed[status_id]
        await append_event(
            connection, outbox, kind="status.deleted", payload={"id": str(row.id), "account_id": str(row.account_id)}
        )
    return [(row.id, row.account_id) for row in (doomed[i] for i in doomed_ids)]


async def _decrement(connection: AsyncConnection, key_column, count_column, amounts: Counter) -> None:  # noqa: ANN001
    if not amounts:
        return
    table = key_column.table
    statement = (
        update(table)
        .where(key_column == bindparam("target_key"))
        .values({count_column.name: count_column - bindparam("amount")})
    )
    await connection.execute(statement, [{"target_key": key, "amount": amount} for key, amount in amounts.items()])


async def delete_account_content(connection: AsyncConnection, account_id: int) -> int:
    """Remove what a deleted account left: statuses, reblogs, favourites, mentions; return statuses removed."""
    own = list(await connection.scalars(select(statuses.c.id).where(statuses.c.account_id == account_id)))
    removed = await delete_statuses(connection, own)

    favourited = list(await connection.scalars(select(favourites.c.status_id).where(favourites.c.account_id == account_id)))
    await _decrement(connection, statuses.c.id, statuses.c.favourites_count, Counter(favourited))
    await connection.execute(delete(favourites).where(favourites.c.account_id == account_id))
    await connection.execute(delete(mentions).where(mentions.c.account_id == account_id))
    await connection.execute(delete(idempotency_keys).where(idempotency_keys.c.account_id == account_id))
    await connection.execute(delete(account_stats).where(account_stats.c.account_id == account_id))
    return len(removed)
