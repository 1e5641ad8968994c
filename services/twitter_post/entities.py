"""Build the internal status entity (``S``) from rows, in batches, with the viewer's flags.

The gateway turns ``S`` into Mastodon's Status; this module only gathers what it
needs in a fixed number of queries per batch, whatever the batch size: the
statuses' counts, the originals of reblogs, the fields of statuses not seen
before, their mentions and the viewer's favourites and reblogs.
The reads go straight to the driver (``twitter_shared.driver_query``): they run on
every page a client reads.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twitter_shared.driver_query import DriverQuery, fetch_rows, rfc3339

# Tags of the rows of the viewer-flags query.
FAVOURITED = 1
REBLOGGED = 2


class StatusRow(NamedTuple):
    """A status's columns, in the order a new status is inserted with."""

    id: int
    account_id: int
    text: str
    created_at: Any
    in_reply_to_id: int | None
    in_reply_to_account_id: int | None
    reblog_of_id: int | None
    visibility: str
    spoiler_text: str
    sensitive: Any
    language: str | None
    replies_count: int
    reblogs_count: int
    favourites_count: int


class FixedFields(NamedTuple):
    """The fields of ``S`` that never change after a status is created, formatted as ``S`` has them."""

    account_id: str
    text: str
    created_at: str
    in_reply_to_id: str | None
    in_reply_to_account_id: str | None
    visibility: str
    spoiler_text: str
    sensitive: bool
    language: str | None


# Counts are the only columns that change after a status is created, so the rest is read once and
# kept (``_FIXED_FIELDS``).
COUNTS_BY_ID = DriverQuery(
    "SELECT id, reblog_of_id, replies_count, reblogs_count, favourites_count FROM statuses WHERE id IN :ids",
    id_lists=("ids",),
)
FIXED_FIELDS = FixedFields._fields
FIXED_BY_ID = DriverQuery(f"SELECT id, {', '.join(FIXED_FIELDS)} FROM statuses WHERE id IN :ids", id_lists=("ids",))
MENTIONS_OF = DriverQuery("SELECT status_id, account_id, username FROM mentions WHERE status_id IN :ids", id_lists=("ids",))
# Both flags of several viewers in one statement, tagged by FAVOURITED and REBLOGGED.
VIEWER_FLAGS = DriverQuery(
    f"SELECT {FAVOURITED}, account_id, status_id FROM favourites WHERE account_id IN :viewer_ids AND status_id IN :ids"
    f" UNION ALL SELECT {REBLOGGED}, account_id, reblog_of_id FROM statuses"
    " WHERE account_id IN :viewer_ids AND reblog_of_id IN :ids",
    id_lists=("viewer_ids", "ids"),
)
# Statuses are never edited, so their fixed fields, rendered as in ``S``, are kept by id. Past this
# many the memo starts empty again. That bounds its memory at about 0.5 KB a status, mostly text
# (measured with sys.getsizeof over 2,000 statuses of the dataset).
MAX_KEPT_STATUSES = 20_000
_FIXED_FIELDS: dict[int, FixedFields] = {}


class StatusCounts(NamedTuple):
    """A row of COUNTS_BY_ID, in its column order."""

    id: int
    reblog_of_id: int | None
    replies_count: int
    reblogs_count: int
    favourites_count: int


def _id_or_none(value: int | None) -> str | None:
    return str(value) if value is not None else None


async def load_counts(connection: Any, status_ids: list[int]) -> dict[int, StatusCounts]:
    if not status_ids:
        return {}
    rows = await fetch_rows(connection, COUNTS_BY_ID, ids=sorted(set(status_ids)))
    return {row[0]: StatusCounts._make(row) for row in rows}


async def load_fixed_fields(connection: Any, status_ids: list[int]) -> dict[int, FixedFields]:
    """Return the fixed fields of these statuses, reading only those not kept yet."""
    found = {status_id: _FIXED_FIELDS[status_id] for status_id in status_ids if status_id in _FIXED_FIELDS}
    missing = [status_id for status_id in status_ids if status_id not in found]
    if not missing:
        return found
    if len(_FIXED_FIELDS) + len(missing) > MAX_KEPT_STATUSES:
        _FIXED_FIELDS.clear()
    for row in await fetch_rows(connection, FIXED_BY_ID, ids=missing):
        found[row[0]] = _FIXED_FIELDS[row[0]] = fixed_fields(*row[1:])
    return found


def fixed_fields(
    account_id: int,
    text: str,
    created_at: Any,
    in_reply_to_id: int | None,
    in_reply_to_account_id: int | None,
    visibility: str,
    spoiler_text: str,
    sensitive: Any,
    language: str | None,
) -> FixedFields:
    """Render a status's fixed columns as ``S`` has them."""
    return FixedFields(
        str(account_id),
        text,
        rfc3339(created_at),
        _id_or_none(in_reply_to_id),
        _id_or_none(in_reply_to_account_id),
        visibility,
        spoiler_text,
        bool(sensitive),
        language,
    )


async def render(connection: Any, status_ids: list[int], *, viewer_id: int | None) -> dict[int, dict[str, Any]]:
    """Return ``{id: S}`` for the ids that exist, with a reblog's original under ``reblog``.

    Whether a status exists comes from the counts read in this snapshot, never from the memo,
    so a deleted status is never rendered.
    """
    return (await render_lookups(connection, [(status_ids, viewer_id)]))[0]


async def render_lookups(
    connection: Any, lookups: list[tuple[list[int], int | None]], *, known: list[frozenset[int]] | None = None
) -> list[dict[int, dict[str, Any]]]:
    """Render several look-ups, each ``(status ids, viewer id)``, with one set of queries for all.

    ``known`` has, for each look-up, the ids of statuses whose fixed fields the caller already
    has: those are rendered as a compact ``S`` (see ``status_entity``).
    """
    requested_ids = sorted({status_id for status_ids, _ in lookups for status_id in status_ids})
    counts = await load_counts(connection, requested_ids)
    missing_originals = [row.reblog_of_id for row in counts.values() if row.reblog_of_id and row.reblog_of_id not in counts]
    counts.update(await load_counts(connection, missing_originals))
    if not counts:
        return [{} for _ in lookups]
    all_ids = list(counts)
    fixed = await load_fixed_fields(connection, all_ids)
    with_at = [status_id for status_id in all_ids if status_id in fixed and "@" in fixed[status_id].text]
    mentioned = await _mentions(connection, with_at)
    flags = await _viewer_flags(connection, {viewer_id for _, viewer_id in lookups if viewer_id is not None}, all_ids)

    def entity(row: StatusCounts, viewer_id: int | None, known_ids: frozenset[int]) -> dict[str, Any]:
        original = counts.get(row.reblog_of_id) if row.reblog_of_id else None
        # A reblog's own flags repeat the original's: clients read them from either.
        flag_id = original.id if original is not None else row.id
        return status_entity(
            fixed[row.id],
            row,
            reblog=entity(original, viewer_id, known_ids) if original is not None else None,
            mentions=mentioned.get(row.id, []),
            favourited=(viewer_id, FAVOURITED, flag_id) in flags,
            reblogged=(viewer_id, REBLOGGED, flag_id) in flags,
            compact=row.id in known_ids,
        )

    known_per_lookup = known if known is not None else [frozenset()] * len(lookups)
    return [
        {
            row_id: entity(counts[row_id], viewer_id, known_ids)
            for row_id in status_ids
            if row_id in counts and row_id in fixed
        }
        for (status_ids, viewer_id), known_ids in zip(lookups, known_per_lookup, strict=True)
    ]


async def _mentions(connection: Any, status_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    # Mentions are found in the text when a status is created, so the caller passes only statuses with an "@".
    mentioned: dict[int, list[dict[str, str]]] = {}
    for status_id, account_id, username in await fetch_rows(connection, MENTIONS_OF, ids=status_ids) if status_ids else ():
        mentioned.setdefault(status_id, []).append({"id": str(account_id), "username": username})
    for listed in mentioned.values():
        # Sorted here, not by the database: PostgreSQL's collation orders usernames differently.
        listed.sort(key=mention_order)
    return mentioned


async def _viewer_flags(connection: Any, viewer_ids: set[int], status_ids: list[int]) -> set[tuple[int, int, int]]:
    """Return ``(viewer id, FAVOURITED or REBLOGGED, status id)`` for each flag the viewers have on these statuses."""
    if not viewer_ids:
        return set()
    rows = await fetch_rows(connection, VIEWER_FLAGS, viewer_ids=sorted(viewer_ids), ids=status_ids)
    return {(viewer_id, flag, status_id) for flag, viewer_id, status_id in rows}


def mention_order(mention: dict[str, str]) -> str:
    """Order a status's mentions by username, by code point on every back-end."""
    return mention["username"]


def status_entity(
    fixed: FixedFields,
    counts: StatusCounts,
    *,
    reblog: dict[str, Any] | None,
    mentions: list[dict[str, str]],
    favourited: bool,
    reblogged: bool,
    compact: bool = False,
) -> dict[str, Any]:
    """Build ``S`` from a status's fixed fields, its counts and what was gathered for it.

    A ``compact`` one, for a caller that has the fixed fields, leaves them out but for
    ``account_id``. It keeps what can change and what a caller needs to find the rest.
    """
    entity = {
        "id": str(counts.id),
        "account_id": fixed.account_id,
        "reblog_of_id": _id_or_none(counts.reblog_of_id),
        "reblog": reblog,
        "mentions": mentions,
        "replies_count": counts.replies_count,
        "reblogs_count": counts.reblogs_count,
        "favourites_count": counts.favourites_count,
        "favourited": favourited,
        "reblogged": reblogged,
    }
    if not compact:
        entity.update(
            text=fixed.text,
            created_at=fixed.created_at,
            in_reply_to_id=fixed.in_reply_to_id,
            in_reply_to_account_id=fixed.in_reply_to_account_id,
            visibility=fixed.visibility,
            spoiler_text=fixed.spoiler_text,
            sensitive=fixed.sensitive,
            language=fixed.language,
            edited_at=None,
        )
    return entity


def new_status_entity(values: dict[str, Any], mentions: dict[int, str]) -> dict[str, Any]:
    """Build ``S`` for a status just inserted with ``values``, without reading it back.

    No account can have favourited or reblogged it yet, and its counts start at zero.
    """
    listed = sorted(({"id": str(account), "username": name} for account, name in mentions.items()), key=mention_order)
    fixed = fixed_fields(*(values[name] for name in FIXED_FIELDS))
    counts = StatusCounts(
        id=values["id"], reblog_of_id=values["reblog_of_id"], replies_count=0, reblogs_count=0, favourites_count=0
    )
    return status_entity(fixed, counts, reblog=None, mentions=listed, favourited=False, reblogged=False)
