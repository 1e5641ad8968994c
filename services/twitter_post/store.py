"""Queries of the post service: create, read, list, favourite, reblog and delete statuses.

Functions take the engine (and the id generator where they create rows) and raise
the project's errors, never SQLAlchemy's. Every change that other services must
hear about appends its event to the outbox in the same transaction as the change.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_post import entities
from twitter_post.removal import chunks, counts_towards_stats, delete_statuses
from twitter_post.tables import account_stats, favourites, idempotency_keys, mentions, outbox, statuses
from twitter_shared.database import read_only, transaction
from twitter_shared.driver_query import DriverQuery, execute, fetch_rows, rfc3339
from twitter_shared.errors import Forbidden, NotFound, ValidationFailed
from twitter_shared.ids import IdGenerator, time_of_id
from twitter_shared.outbox import append_event
from twitter_shared.pagination import PageRequest, bound_sql

IDEMPOTENCY_TTL = timedelta(hours=1)
IDEMPOTENCY_REUSED = "Idempotency-Key reused with a different request"
ALREADY_FAVOURITED = "You have already favourited this status"
ALREADY_REBLOGGED = "You have already reblogged this status"
REBLOG_NOT_ALLOWED = "This status cannot be reblogged"
NOT_AUTHOR = "You can only delete your own statuses"
# Replies gathered for one context; Mastodon caps descendants similarly.
MAX_DESCENDANTS = 4096
MAX_ANCESTORS = 40


@dataclass(frozen=True)
class NewStatus:
    """A validated status request; ``mentions`` maps account ids to the usernames written."""

    account_id: int
    text: str
    in_reply_to_id: int | None
    visibility: str
    spoiler_text: str
    sensitive: bool
    language: str | None
    mentions: dict[int, str]
    idempotency_key: str | None

    def request_hash(self) -> str:
        fields = [self.text, self.in_reply_to_id, self.visibility, self.spoiler_text, self.sensitive, self.language]
        return hashlib.sha256(orjson.dumps(fields)).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


BUMP_AUTHOR_STATS = DriverQuery(
    "INSERT INTO account_stats (account_id, statuses_count, last_status_at) VALUES (:account_id, 1, :at)"
    " ON CONFLICT (account_id) DO UPDATE SET statuses_count = account_stats.statuses_count + 1, last_status_at = :at"
)
INSERT_STATUS = DriverQuery(
    f"INSERT INTO statuses ({', '.join(entities.StatusRow._fields)})"
    f" VALUES ({', '.join(':' + name for name in entities.StatusRow._fields)})"
)


async def _insert_status(
    connection: AsyncConnection,
    *,
    status_id: int,
    account_id: int,
    text: str,
    visibility: str,
    in_reply_to: Any = None,
    reblog_of_id: int | None = None,
    spoiler_text: str = "",
    sensitive: bool = False,
    language: str | None = None,
) -> dict[str, Any]:
    """Insert a status with its stats and event; return the row's values."""
    created_at = time_of_id(status_id)
    values = {
        "id": status_id,
        "account_id": account_id,
        "text": text,
        "created_at": created_at,
        "in_reply_to_id": in_reply_to.id if in_reply_to is not None else None,
        "in_reply_to_account_id": in_reply_to.account_id if in_reply_to is not None else None,
        "reblog_of_id": reblog_of_id,
        "visibility": visibility,
        "spoiler_text": spoiler_text,
        "sensitive": sensitive,
        "language": language,
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
    }
    await execute(connection, INSERT_STATUS, **values)
    if in_reply_to is not None:
        await connection.execute(
            update(statuses).where(statuses.c.id == in_reply_to.id).values(replies_count=statuses.c.replies_count + 1)
        )
    if counts_towards_stats(visibility):
        await execute(connection, BUMP_AUTHOR_STATS, account_id=account_id, at=created_at)
    await append_event(
        connection,
        outbox,
        kind="status.created",
        payload={
            "id": str(status_id),
            "account_id": str(account_id),
            "reblog_of_id": str(reblog_of_id) if reblog_of_id is not None else None,
        },
    )
    return values


async def _original(connection: AsyncConnection, status_id: int) -> Any:
    """Return the row of a status, or of its original when it is a reblog; ``NotFound`` if missing."""
    row = (await connection.execute(select(statuses).where(statuses.c.id == status_id))).first()
    if row is not None and row.reblog_of_id is not None:
        row = (await connection.execute(select(statuses).where(statuses.c.id == row.reblog_of_id))).first()
    if row is None:
        raise NotFound()
    return row


async def _render_one(connection: AsyncConnection, status_id: int, *, viewer_id: int | None) -> dict[str, Any]:
    rendered = await entities.render(connection, [status_id], viewer_id=viewer_id)
    if status_id not in rendered:
        raise NotFound()
    return rendered[status_id]


# --- Creating ---------------------------------------------------------------------------------


async def _earlier_request(connection: AsyncConnection, request: NewStatus) -> int | None:
    """Return the status an earlier request with the same key created, or None; 422 if it differed."""
    row = (
        await connection.execute(
            select(idempotency_keys.c.request_hash, idempotency_keys.c.status_id).where(
                idempotency_keys.c.account_id == request.account_id,
                idempotency_keys.c.key == request.idempotency_key,
                idempotency_keys.c.created_at > _now() - IDEMPOTENCY_TTL,
            )
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != request.request_hash():
        raise ValidationFailed(IDEMPOTENCY_REUSED)
    return row.status_id


async def create_status(
    engine: AsyncEngine, ids: IdGenerator, request: NewStatus
) -> tuple[dict[str, Any], bool, dict[str, Any]]:
    """Create a status; return ``(S, created, author stats)``, where a repeated Idempotency-Key gives the first status.

    The author's stats come from the same transaction, so the gateway renders the response without another call.
    """
    if request.idempotency_key is not None:
        async with read_only(engine) as connection:
            earlier = await _earlier_status(connection, request)
            if earlier is not None:
                return earlier

    status_id = ids.next_id()
    try:
        async with transaction(engine) as connection:
            parent = await _original(connection, request.in_reply_to_id) if request.in_reply_to_id else None
            inserted = await _insert_status(
                connection,
                status_id=status_id,
                account_id=request.account_id,
                text=request.text,
                visibility=request.visibility,
                in_reply_to=parent,
                spoiler_text=request.spoiler_text,
                sensitive=request.sensitive,
                language=request.language,
            )
            if request.mentions:
                await connection.execute(
                    insert(mentions),
                    [{"status_id": status_id, "account_id": account, "username": name} for account, name in request.mentions.items()],
                )
            if request.idempotency_key is not None:
                # An expired key may be reused for a new status: the old row gives way. A live one
                # stays, so a concurrent request with the same key fails on it below and gets that status.
                await connection.execute(
                    delete(idempotency_keys).where(
                        idempotency_keys.c.account_id == request.account_id,
                        idempotency_keys.c.key == request.idempotency_key,
                        idempotency_keys.c.created_at <= _now() - IDEMPOTENCY_TTL,
                    )
                )
                await connection.execute(
                    insert(idempotency_keys).values(
                        account_id=request.account_id,
                        key=request.idempotency_key,
                        request_hash=request.request_hash(),
                        status_id=status_id,
                        created_at=_now(),
                    )
                )
            author_stats = await _account_stats(connection, [request.account_id])
            return entities.new_status_entity(inserted, request.mentions), True, author_stats
    except IntegrityError:
        # Only the idempotency key can collide: the same request is running concurrently and won.
        if request.idempotency_key is None:
            raise
        async with read_only(engine) as connection:
            earlier = await _earlier_status(connection, request)
            if earlier is None:
                raise
            return earlier


async def _earlier_status(
    connection: AsyncConnection, request: NewStatus
) -> tuple[dict[str, Any], bool, dict[str, Any]] | None:
    """Return the result of ``create_status`` for a status that an earlier request with the same key created."""
    earlier = await _earlier_request(connection, request)
    if earlier is None:
        return None
    status = await _render_one(connection, earlier, viewer_id=request.account_id)
    return status, False, await _account_stats(connection, [request.account_id])


async def purge_idempotency_keys(engine: AsyncEngine) -> int:
    async with transaction(engine) as connection:
        purged = await connection.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < _now() - IDEMPOTENCY_TTL))
    return purged.rowcount


# --- Reading ----------------------------------------------------------------------------------


async def get_statuses(engine: AsyncEngine, status_ids: list[int], *, viewer_id: int | None) -> list[dict[str, Any]]:
    async with read_only(engine) as connection:
        rendered = await entities.render(connection, status_ids, viewer_id=viewer_id)
    return [rendered[status_id] for status_id in dict.fromkeys(status_ids) if status_id in rendered]


async def get_statuses_with_author_stats(
    engine: AsyncEngine, status_ids: list[int], *, viewer_id: int | None
) -> dict[str, Any]:
    """Return ``{"statuses": [S...], "author_stats": {account id: stats}}`` from one transaction.

    The authors are those of the statuses and of reblogged originals, the accounts a client
    renders. The gateway then needs no separate stats call to hydrate a page.
    """
    return (await look_up_statuses(engine, [(status_ids, viewer_id)]))[0]


async def look_up_statuses(
    engine: AsyncEngine, lookups: list[tuple[list[int], int | None]], *, known: list[frozenset[int]] | None = None
) -> list[dict[str, Any]]:
    """Return what ``get_statuses_with_author_stats`` gives for each look-up, ``(status ids, viewer id)``, from one read.

    ``known`` is passed on to ``entities.render_lookups``.
    """
    return (await read_pages(engine, lookups, known=known or [frozenset()] * len(lookups), pages=[]))[0]


async def _with_author_stats(
    connection: Any, lookups: list[tuple[list[int], int | None]], *, known: list[frozenset[int]]
) -> list[dict[str, Any]]:
    """Render each look-up's statuses in order, with the stats of the authors each one shows."""
    rendered = await entities.render_lookups(connection, lookups, known=known)
    found = [
        [page[status_id] for status_id in dict.fromkeys(status_ids) if status_id in page]
        for (status_ids, _), page in zip(lookups, rendered, strict=True)
    ]
    authors = [authors_of(statuses_found) for statuses_found in found]
    stats = await _account_stats(connection, sorted({author for page_authors in authors for author in page_authors}))
    return [
        {"statuses": statuses_found, "author_stats": {str(author): stats[str(author)] for author in page_authors}}
        for statuses_found, page_authors in zip(found, authors, strict=True)
    ]


def authors_of(found: list[dict[str, Any]]) -> list[int]:
    """Return the accounts a client renders with these statuses: their authors and the reblogged originals' authors."""
    authors = {int(status["account_id"]) for status in found}
    authors.update(int(status["reblog"]["account_id"]) for status in found if status["reblog"] is not None)
    return sorted(authors)


async def get_status(engine: AsyncEngine, status_id: int, *, viewer_id: int | None) -> dict[str, Any]:
    async with read_only(engine) as connection:
        return await _render_one(connection, status_id, viewer_id=viewer_id)


async def context(engine: AsyncEngine, status_id: int, *, viewer_id: int | None) -> dict[str, list[dict[str, Any]]]:
    """Return the ancestors (oldest first) and the descendants in thread order (depth first, oldest reply first)."""
    async with read_only(engine) as connection:
        row = (await connection.execute(select(statuses.c.id, statuses.c.in_reply_to_id).where(statuses.c.id == status_id))).first()
        if row is None:
            raise NotFound()

        ancestors: list[int] = []
        parent_id = row.in_reply_to_id
        while parent_id is not None and len(ancestors) < MAX_ANCESTORS:
            parent = (
                await connection.execute(select(statuses.c.id, statuses.c.in_reply_to_id).where(statuses.c.id == parent_id))
            ).first()
            if parent is None:
                break
            ancestors.append(parent.id)
            parent_id = parent.in_reply_to_id
        ancestors.reverse()

        descendants = await _thread_below(connection, status_id)
        rendered = await entities.render(connection, ancestors + descendants, viewer_id=viewer_id)
    return {
        "ancestors": [rendered[i] for i in ancestors if i in rendered],
        "descendants": [rendered[i] for i in descendants if i in rendered],
    }


async def _thread_below(connection: AsyncConnection, status_id: int) -> list[int]:
    """Collect replies level by level, then order them depth first with older siblings first."""
    children: dict[int, list[int]] = {}
    level = [status_id]
    found = 0
    while level and found < MAX_DESCENDANTS:
        next_level: list[int] = []
        for part in chunks(level):
            rows = await connection.execute(
                select(statuses.c.id, statuses.c.in_reply_to_id).where(statuses.c.in_reply_to_id.in_(part))
            )
            for reply in rows:
                children.setdefault(reply.in_reply_to_id, []).append(reply.id)
                next_level.append(reply.id)
        found += len(next_level)
        level = next_level

    ordered: list[int] = []
    stack = sorted(children.get(status_id, []), reverse=True)
    while stack and len(ordered) < MAX_DESCENDANTS:
        current = stack.pop()
        ordered.append(current)
        stack.extend(sorted(children.get(current, []), reverse=True))
    return ordered


@dataclass(frozen=True)
class AccountStatusFilter:
    exclude_replies: bool = False
    exclude_reblogs: bool = False


@dataclass(frozen=True)
class AccountPage:
    """A page of one account's statuses, as one viewer reads it (``viewer_id`` is None for an anonymous reader)."""

    account_id: int
    page: PageRequest
    filters: AccountStatusFilter
    viewer_id: int | None


async def account_statuses(
    engine: AsyncEngine,
    account_id: int,
    *,
    page: PageRequest,
    filters: AccountStatusFilter,
    viewer_id: int | None,
    with_author_stats: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return a page of an account's statuses and, if requested, their authors' stats from the same read."""
    found = (await account_statuses_pages(engine, [AccountPage(account_id, page, filters, viewer_id)]))[0]
    return found["statuses"], found["author_stats"] if with_author_stats else {}


async def account_statuses_pages(engine: AsyncEngine, pages: list[AccountPage]) -> list[dict[str, Any]]:
    """Return ``{"statuses": [S...], "author_stats": {...}}`` for each page, in order, from one read."""
    return (await read_pages(engine, [], known=[], pages=pages))[1]


async def read_pages(
    engine: AsyncEngine,
    lookups: list[tuple[list[int], int | None]],
    *,
    known: list[frozenset[int]],
    pages: list[AccountPage],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return what ``look_up_statuses`` and ``account_statuses_pages`` give for these, from one read.

    Their statuses are rendered together, with one query each for counts, fixed fields,
    mentions, viewer flags and author stats.
    """
    async with read_only(engine) as connection:
        page_lookups = []
        for requested in pages:
            query = _account_statuses_query(requested.filters, requested.page.shape)
            rows = await fetch_rows(connection, query, account_id=requested.account_id, **requested.page.bound_values())
            page_lookups.append(([status_id for (status_id,) in requested.page.newest_first(rows)], requested.viewer_id))
        results = await _with_author_stats(
            connection, [*lookups, *page_lookups], known=[*known, *[frozenset()] * len(pages)]
        )
        return results[: len(lookups)], results[len(lookups) :]


@functools.cache
def _account_statuses_query(filters: AccountStatusFilter, shape: tuple[bool, bool, bool]) -> DriverQuery:
    sql = "SELECT id FROM statuses WHERE account_id = :account_id"
    if filters.exclude_replies:
        # Mastodon keeps self-replies (threads) when replies are excluded.
        sql += " AND (in_reply_to_id IS NULL OR in_reply_to_account_id = account_id)"
    if filters.exclude_reblogs:
        sql += " AND reblog_of_id IS NULL"
    return DriverQuery(sql + bound_sql("id", shape))


async def account_stats_for(engine: AsyncEngine, account_ids: list[int]) -> dict[str, dict[str, Any]]:
    if not account_ids:
        return {}
    async with read_only(engine) as connection:
        return await _account_stats(connection, account_ids)


STATS_OF_ACCOUNTS = DriverQuery(
    "SELECT account_id, statuses_count, last_status_at FROM account_stats WHERE account_id IN :ids", id_lists=("ids",)
)


async def _account_stats(connection: AsyncConnection, account_ids: list[int]) -> dict[str, dict[str, Any]]:
    result = {str(account_id): {"statuses_count": 0, "last_status_at": None} for account_id in account_ids}
    if not account_ids:
        return result
    for account_id, statuses_count, last_status_at in await fetch_rows(connection, STATS_OF_ACCOUNTS, ids=account_ids):
        result[str(account_id)] = {
            "statuses_count": statuses_count,
            "last_status_at": rfc3339(last_status_at)[:10] if last_status_at is not None else None,
        }
    return result


def _ref(row: Any) -> dict[str, str | None]:
    return {
        "id": str(row.id),
        "account_id": str(row.account_id),
        "reblog_of_id": str(row.reblog_of_id) if row.reblog_of_id is not None else None,
    }


async def account_status_refs(engine: AsyncEngine, account_id: int, *, limit: int) -> list[dict[str, str | None]]:
    """Return the newest ``limit`` statuses (reblogs included) of an account, newest first, as bare references."""
    async with read_only(engine) as connection:
        rows = await connection.execute(
            select(statuses.c.id, statuses.c.account_id, statuses.c.reblog_of_id)
            .where(statuses.c.account_id == account_id)
            .order_by(statuses.c.id.desc())
            .limit(limit)
        )
        return [_ref(row) for row in rows]


async def status_refs_after(engine: AsyncEngine, *, after_id: int, limit: int) -> list[dict[str, str | None]]:
    """Return statuses in id order, for rebuilding timelines; page with the last id returned."""
    async with read_only(engine) as connection:
        rows = await connection.execute(
            select(statuses.c.id, statuses.c.account_id, statuses.c.reblog_of_id)
            .where(statuses.c.id > after_id)
            .order_by(statuses.c.id)
            .limit(limit)
        )
        return [_ref(row) for row in rows]


async def instance_stats(engine: AsyncEngine) -> dict[str, int]:
    async with read_only(engine) as connection:
        count = await connection.scalar(select(func.count()).select_from(statuses).where(statuses.c.reblog_of_id.is_(None)))
    return {"status_count": int(count or 0)}


# --- Favourites and reblogs -------------------------------------------------------------------


async def favourite(engine: AsyncEngine, status_id: int, *, account_id: int) -> dict[str, Any]:
    try:
        async with transaction(engine) as connection:
            original = await _original(connection, status_id)
            already = await connection.scalar(
                select(func.count()).where(favourites.c.status_id == original.id, favourites.c.account_id == account_id)
            )
            if already:
                raise ValidationFailed(ALREADY_FAVOURITED)
            await connection.execute(insert(favourites).values(status_id=original.id, account_id=account_id, created_at=_now()))
            await connection.execute(
                update(statuses).where(statuses.c.id == original.id).values(favourites_count=statuses.c.favourites_count + 1)
            )
            return await _render_one(connection, status_id, viewer_id=account_id)
    except IntegrityError as error:
        raise ValidationFailed(ALREADY_FAVOURITED) from error


async def unfavourite(engine: AsyncEngine, status_id: int, *, account_id: int) -> dict[str, Any]:
    async with transaction(engine) as connection:
        original = await _original(connection, status_id)
        removed = await connection.execute(
            delete(favourites).where(favourites.c.status_id == original.id, favourites.c.account_id == account_id)
        )
        if removed.rowcount:
            await connection.execute(
                update(statuses).where(statuses.c.id == original.id).values(favourites_count=statuses.c.favourites_count - 1)
            )
        return await _render_one(connection, status_id, viewer_id=account_id)


def _may_reblog(original: Any, account_id: int) -> bool:
    """Mastodon's rule: public and unlisted statuses, or one's own private ones; never direct messages."""
    if original.visibility in {"public", "unlisted"}:
        return True
    return original.visibility == "private" and original.account_id == account_id


async def reblog(engine: AsyncEngine, ids: IdGenerator, status_id: int, *, account_id: int) -> dict[str, Any]:
    """Reblog a status (the original, when given a reblog); return the new reblog status."""
    reblog_id = ids.next_id()
    try:
        async with transaction(engine) as connection:
            original = await _original(connection, status_id)
            if not _may_reblog(original, account_id):
                raise Forbidden(REBLOG_NOT_ALLOWED)
            already = await connection.scalar(
                select(func.count()).where(statuses.c.reblog_of_id == original.id, statuses.c.account_id == account_id)
            )
            if already:
                raise ValidationFailed(ALREADY_REBLOGGED)
            await _insert_status(
                connection,
                status_id=reblog_id,
                account_id=account_id,
                text="",
                visibility="private" if original.visibility == "private" else "public",
                reblog_of_id=original.id,
            )
            await connection.execute(
                update(statuses).where(statuses.c.id == original.id).values(reblogs_count=statuses.c.reblogs_count + 1)
            )
            return await _render_one(connection, reblog_id, viewer_id=account_id)
    except IntegrityError as error:
        raise ValidationFailed(ALREADY_REBLOGGED) from error


async def unreblog(engine: AsyncEngine, status_id: int, *, account_id: int) -> dict[str, Any]:
    """Remove the account's reblog of the status, if any; return the original as the account now sees it."""
    async with transaction(engine) as connection:
        original = await _original(connection, status_id)
        reblog_ids = list(
            await connection.scalars(
                select(statuses.c.id).where(statuses.c.reblog_of_id == original.id, statuses.c.account_id == account_id)
            )
        )
        await delete_statuses(connection, reblog_ids)
        return await _render_one(connection, original.id, viewer_id=account_id)


# --- Deleting ---------------------------------------------------------------------------------


async def delete_status(engine: AsyncEngine, status_id: int, *, account_id: int) -> dict[str, Any]:
    """Delete one's own status with its reblogs; return it as it was, text included, for redrafting."""
    async with transaction(engine) as connection:
        author = await connection.scalar(select(statuses.c.account_id).where(statuses.c.id == status_id))
        if author is None:
            raise NotFound()
        if author != account_id:
            raise Forbidden(NOT_AUTHOR)
        before = await _render_one(connection, status_id, viewer_id=account_id)
        await delete_statuses(connection, [status_id])
    return before
