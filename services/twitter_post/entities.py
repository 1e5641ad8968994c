"""Build the internal status entity (``S``) from rows, in batches, with the viewer's flags.

The gateway turns ``S`` into Mastodon's Status; this module only gathers what it
needs in a fixed number of queries per batch, whatever the batch size: the
statuses, the originals of reblogs, their mentions and the viewer's favourites
and reblogs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, bindparam, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from twitter_post.tables import favourites, mentions, statuses

# Tags of the rows of the viewer-flags query.
FAVOURITED = 1
REBLOGGED = 2

# The statements of a batch are built once: building a select costs more CPU than SQLite takes to run it.
_IDS = bindparam("ids", expanding=True)
STATUSES_BY_ID = select(statuses).where(statuses.c.id.in_(_IDS))
MENTIONS_OF = (
    select(mentions.c.status_id, mentions.c.account_id, mentions.c.username)
    .where(mentions.c.status_id.in_(_IDS))
)
# Both flags in one statement, tagged by FAVOURITED and REBLOGGED.
VIEWER_FLAGS = union_all(
    select(literal(FAVOURITED).label("flag"), favourites.c.status_id.label("status_id")).where(
        favourites.c.account_id == bindparam("viewer_id"), favourites.c.status_id.in_(_IDS)
    ),
    select(literal(REBLOGGED).label("flag"), statuses.c.reblog_of_id.label("status_id")).where(
        statuses.c.account_id == bindparam("viewer_id"), statuses.c.reblog_of_id.in_(_IDS)
    ),
)


def rfc3339(moment: datetime) -> str:
    """Format a time as RFC 3339 UTC with milliseconds; SQLite hands back naive UTC times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def _id_or_none(value: int | None) -> str | None:
    return str(value) if value is not None else None


async def load_rows(connection: AsyncConnection, status_ids: list[int]) -> dict[int, Row]:
    if not status_ids:
        return {}
    rows = await connection.execute(STATUSES_BY_ID, {"ids": sorted(set(status_ids))})
    return {row.id: row for row in rows}


async def render(
    connection: AsyncConnection, status_ids: list[int], *, viewer_id: int | None
) -> dict[int, dict[str, Any]]:
    """Return ``{id: S}`` for the ids that exist; reblogs carry their original under ``reblog``."""
    rows = await load_rows(connection, status_ids)
    missing_originals = [row.reblog_of_id for row in rows.values() if row.reblog_of_id and row.reblog_of_id not in rows]
    rows.update(await load_rows(connection, missing_originals))
    if not rows:
        return {}
    all_ids = list(rows)

    mentioned: dict[int, list[dict[str, str]]] = {}
    # Mentions are found in the text when a status is created, so a batch without an "@" has none.
    with_at = [row.id for row in rows.values() if "@" in row.text]
    for row in await connection.execute(MENTIONS_OF, {"ids": with_at}) if with_at else ():
        mentioned.setdefault(row.status_id, []).append({"id": str(row.account_id), "username": row.username})
    for listed in mentioned.values():
        # Sorted here, not by the database: PostgreSQL's collation orders usernames differently.
        listed.sort(key=mention_order)

    favourited: set[int] = set()
    reblogged: set[int] = set()
    if viewer_id is not None:
        for flag, status_id in await connection.execute(VIEWER_FLAGS, {"viewer_id": viewer_id, "ids": all_ids}):
            (favourited if flag == FAVOURITED else reblogged).add(status_id)

    def entity(row: Row) -> dict[str, Any]:
        original = rows.get(row.reblog_of_id) if row.reblog_of_id else None
        # A reblog's own flags repeat the original's: clients read them from either.
        flag_id = original.id if original is not None else row.id
        return status_entity(
            row,
            reblog=entity(original) if original is not None else None,
            mentions=mentioned.get(row.id, []),
            favourited=flag_id in favourited,
            reblogged=flag_id in reblogged,
        )

    return {row_id: entity(rows[row_id]) for row_id in status_ids if row_id in rows}


def mention_order(mention: dict[str, str]) -> str:
    """Order a status's mentions by username, by code point on every back-end."""
    return mention["username"]


def status_entity(
    row: Any, *, reblog: dict[str, Any] | None, mentions: list[dict[str, str]], favourited: bool, reblogged: bool
) -> dict[str, Any]:
    """Build ``S`` from a status row (or anything with the same attributes) and what was gathered for it."""
    return {
        "id": str(row.id),
        "account_id": str(row.account_id),
        "text": row.text,
        "created_at": rfc3339(row.created_at),
        "in_reply_to_id": _id_or_none(row.in_reply_to_id),
        "in_reply_to_account_id": _id_or_none(row.in_reply_to_account_id),
        "reblog_of_id": _id_or_none(row.reblog_of_id),
        "reblog": reblog,
        "visibility": row.visibility,
        "spoiler_text": row.spoiler_text,
        "sensitive": bool(row.sensitive),
        "language": row.language,
        "mentions": mentions,
        "replies_count": row.replies_count,
        "reblogs_count": row.reblogs_count,
        "favourites_count": row.favourites_count,
        "favourited": favourited,
        "reblogged": reblogged,
        "edited_at": None,
    }


def new_status_entity(values: dict[str, Any], mentions: dict[int, str]) -> dict[str, Any]:
    """Build ``S`` for a status just inserted with ``values``, without reading it back.

    No account can have favourited or reblogged it yet, and its counts start at zero.
    """
    listed = sorted(({"id": str(account), "username": name} for account, name in mentions.items()), key=mention_order)
    return status_entity(SimpleNamespace(**values), reblog=None, mentions=listed, favourited=False, reblogged=False)
