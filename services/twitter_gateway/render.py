"""Mastodon entities (Account, Status, Relationship) built from the services' internal records.

Internal records carry plain text and ids; this module adds what clients expect:
HTML content with links and mentions, absolute URLs, RFC 3339 times with
milliseconds, and the many fields this server has no feature for, set to the
values Mastodon gives when a feature is unused.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

URL_PATTERN = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
MENTION_PATTERN = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,30})(?:@[A-Za-z0-9.-]+)?")
DEFAULT_AVATAR = "/avatars/original/missing.png"
DEFAULT_HEADER = "/headers/original/missing.png"
RFC3339_LENGTH = len("2026-12-04T20:50:15.123Z")
# Renderings are kept by everything they are made from, so a kept one is never out of date. Past
# this many entries a memo starts empty again, which bounds its memory. Accounts are rendered
# again only when ``render_json`` has no JSON of them kept, so few are kept.
MAX_MEMO_ENTRIES = 2_000
# Status strings are made again only when ``render_json`` has no kept JSON of the status, so fewer
# are kept. They are also bounded by their characters, counted roughly: with a long Host header
# and many mentions, 5,000 entries took 157 MB.
MAX_KEPT_STATUS_STRINGS = 5_000
MAX_KEPT_STATUS_STRING_CHARS = 4_000_000
# The characters kept in ``_STATUS_STRINGS``, in a list so the functions here can change it.
_kept_string_chars = [0]
_ACCOUNTS_WITHOUT_STATS: dict[tuple[Any, ...], dict[str, Any]] = {}
_STATUS_STRINGS: dict[tuple[str, str, bool], _StatusStrings] = {}


def rfc3339(value: str | datetime | None) -> str | None:
    """Format a time as ``2026-12-04T20:50:15.123Z``."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) == RFC3339_LENGTH and value.endswith("Z"):
        return value  # the services already send this form
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def text_to_html(text: str, *, base_url: str, mentions: dict[str, str] | None = None) -> str:
    """Escape ``text`` and turn URLs and known mentions into links; blank lines split paragraphs."""
    mentions = mentions or {}

    def render_fragment(fragment: str) -> str:
        pieces: list[str] = []
        position = 0
        for match in URL_PATTERN.finditer(fragment):
            pieces.append(_mentions_to_html(fragment[position:match.start()], base_url, mentions))
            url = html.escape(match.group(0))
            pieces.append(f'<a href="{url}" rel="nofollow noopener noreferrer" target="_blank">{url}</a>')
            position = match.end()
        pieces.append(_mentions_to_html(fragment[position:], base_url, mentions))
        return "".join(pieces)

    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p]
    return "".join(f"<p>{render_fragment(p).replace(chr(10), '<br />')}</p>" for p in paragraphs)


def _mentions_to_html(fragment: str, base_url: str, mentions: dict[str, str]) -> str:
    if not mentions:
        return html.escape(fragment)
    pieces: list[str] = []
    position = 0
    for match in MENTION_PATTERN.finditer(fragment):
        username = match.group(1)
        if username.lower() not in mentions:
            continue
        pieces.append(html.escape(fragment[position:match.start()]))
        href = html.escape(f"{base_url}/@{username}")
        pieces.append(
            f'<span class="h-card"><a href="{href}" class="u-url mention">@<span>{html.escape(username)}</span></a></span>'
        )
        position = match.end()
    pieces.append(html.escape(fragment[position:]))
    return "".join(pieces)


def account_entity(
    account: dict[str, Any], stats: dict[str, Any] | None, *, base_url: str, with_source: bool = False
) -> dict[str, Any]:
    """Render an account record with its post stats. Each call returns new dicts and lists, so a caller may change them."""
    key = (base_url, with_source, *account.items())
    rendered = _ACCOUNTS_WITHOUT_STATS.get(key)
    if rendered is None:
        if len(_ACCOUNTS_WITHOUT_STATS) >= MAX_MEMO_ENTRIES:
            _ACCOUNTS_WITHOUT_STATS.clear()
        rendered = _ACCOUNTS_WITHOUT_STATS[key] = _account_without_stats(account, base_url=base_url, with_source=with_source)
    stats = stats or {}
    entity = {
        **rendered,
        "statuses_count": stats.get("statuses_count", 0),
        "last_status_at": stats.get("last_status_at"),
        # New lists too, so a caller that changes one does not change the kept rendering.
        "emojis": [],
        "roles": [],
        "fields": [],
    }
    if with_source:
        entity["source"] = {**rendered["source"], "fields": []}
    return entity


def _account_without_stats(account: dict[str, Any], *, base_url: str, with_source: bool) -> dict[str, Any]:
    url = f"{base_url}/@{account['username']}"
    created = datetime.fromisoformat(account["created_at"]).astimezone(UTC)
    entity = {
        "id": account["id"],
        "username": account["username"],
        "acct": account["username"],
        "display_name": account["display_name"],
        "locked": False,
        "bot": False,
        "discoverable": True,
        "indexable": False,
        "group": False,
        # Mastodon reports account creation at day precision.
        "created_at": rfc3339(created.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": text_to_html(account["note"], base_url=base_url) if account["note"] else "",
        "url": url,
        "uri": f"{base_url}/users/{account['username']}",
        "avatar": base_url + DEFAULT_AVATAR,
        "avatar_static": base_url + DEFAULT_AVATAR,
        "header": base_url + DEFAULT_HEADER,
        "header_static": base_url + DEFAULT_HEADER,
        "followers_count": account["followers_count"],
        "following_count": account["following_count"],
        "statuses_count": 0,
        "last_status_at": None,
        "hide_collections": False,
        "noindex": False,
        "emojis": [],
        "roles": [],
        "fields": [],
    }
    if with_source:
        entity["source"] = {
            "privacy": "public",
            "sensitive": False,
            "language": account.get("locale") or "en",
            "note": account["note"],
            "fields": [],
            "follow_requests_count": 0,
            "hide_collections": False,
            "discoverable": True,
            "indexable": False,
        }
    return entity


def status_content(status: dict[str, Any], *, base_url: str) -> str:
    """Render the HTML of a status's text, with links for its URLs and its mentions."""
    mentions = {m["username"].lower(): m["id"] for m in status.get("mentions", [])}
    return text_to_html(status.get("text", ""), base_url=base_url, mentions=mentions)


class _StatusStrings(NamedTuple):
    """The unchanging inputs of a status's rendering, and the strings made from them."""

    text: str
    username: str
    mention_ids: tuple[str, ...]
    created_at: str | None
    uri: str
    url: str | None
    content: str
    # Each mention as (id, username, profile URL).
    mentions: tuple[tuple[str, str, str], ...]


def status_entity(
    status: dict[str, Any],
    accounts: dict[str, dict[str, Any]],
    *,
    base_url: str,
    with_text: bool = False,
) -> dict[str, Any] | None:
    """Render a status, or return None when its author (or its reblog's author) is gone, so callers can drop it.

    Each call returns new dicts and lists, except ``account``, which is the entry of ``accounts``.
    """
    account = accounts.get(status["account_id"])
    if account is None:
        return None
    reblog = None
    if status.get("reblog"):
        reblog = status_entity(status["reblog"], accounts, base_url=base_url)
        if reblog is None:
            return None
    return status_fields(status, account["username"], account, reblog, base_url=base_url, with_text=with_text)


def status_fields(
    status: dict[str, Any], username: str, account: Any, reblog: Any, *, base_url: str, with_text: bool
) -> dict[str, Any]:
    """Build a status entity around ``account`` and ``reblog``, which may be entities or JSON fragments."""
    strings = _status_strings(status, username, base_url=base_url, is_reblog=reblog is not None)
    entity = {
        "id": status["id"],
        "created_at": strings.created_at,
        "in_reply_to_id": status.get("in_reply_to_id"),
        "in_reply_to_account_id": status.get("in_reply_to_account_id"),
        "sensitive": bool(status.get("sensitive")),
        "spoiler_text": status.get("spoiler_text") or "",
        "visibility": status.get("visibility") or "public",
        "language": status.get("language"),
        "uri": strings.uri,
        "url": strings.url,
        "replies_count": status.get("replies_count", 0),
        "reblogs_count": status.get("reblogs_count", 0),
        "favourites_count": status.get("favourites_count", 0),
        "edited_at": status.get("edited_at"),
        "favourited": bool(status.get("favourited")),
        "reblogged": bool(status.get("reblogged")),
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": strings.content,
        "filtered": [],
        "reblog": reblog,
        "application": None,
        "account": account,
        "media_attachments": [],
        "mentions": [{"id": id_, "username": name, "acct": name, "url": url} for id_, name, url in strings.mentions],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
    }
    if with_text:
        entity["text"] = status.get("text", "")
    return entity


def _status_strings(status: dict[str, Any], username: str, *, base_url: str, is_reblog: bool) -> _StatusStrings:
    """Return the strings of a status's rendering, made once per status.

    Statuses are never edited here and usernames never change, but a deleted account's
    mentions go. So an entry is used only while its text, username and mentions still match.
    """
    key = (base_url, status["id"], is_reblog)
    text = status.get("text", "")
    listed = status.get("mentions", [])
    mention_ids = tuple(m["id"] for m in listed)
    strings = _STATUS_STRINGS.get(key)
    if strings is not None and (strings.text, strings.username, strings.mention_ids) == (text, username, mention_ids):
        return strings
    strings = _StatusStrings(
        text=text,
        username=username,
        mention_ids=mention_ids,
        created_at=rfc3339(status["created_at"]),
        uri=f"{base_url}/users/{username}/statuses/{status['id']}",
        url=None if is_reblog else f"{base_url}/@{username}/{status['id']}",
        content="" if is_reblog else status_content(status, base_url=base_url),
        mentions=tuple((m["id"], m["username"], f"{base_url}/@{m['username']}") for m in listed),
    )
    # A status with many mentions makes long content, each mention link with the base URL in it.
    size = len(text) + len(strings.uri) + len(strings.content) + sum(len(url) + 40 for _, _, url in strings.mentions)
    if len(_STATUS_STRINGS) >= MAX_KEPT_STATUS_STRINGS or _kept_string_chars[0] + size > MAX_KEPT_STATUS_STRING_CHARS:
        _STATUS_STRINGS.clear()
        _kept_string_chars[0] = 0
    _STATUS_STRINGS[key] = strings
    _kept_string_chars[0] += size
    return strings


def status_account_ids(statuses: list[dict[str, Any]]) -> set[str]:
    ids: set[str] = set()
    for status in statuses:
        ids.add(status["account_id"])
        if status.get("reblog"):
            ids.add(status["reblog"]["account_id"])
    return ids
