"""Queries of the account service: apps, tokens, accounts and follows.

Functions take the engine and the id generator explicitly and raise the
project's errors (``NotFound``, ``ValidationFailed``...), never SQLAlchemy's.
Follows, account deletions, profile edits and token revocations append their
events to the outbox in the same transaction as the change.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from twitter_account import authorization, credentials
from twitter_account.tables import access_tokens, accounts, follows, oauth_apps, outbox
from twitter_account.validation import registration_errors, validation_failed
from twitter_shared.database import read_only, transaction
from twitter_shared.driver_query import DriverQuery, fetch_rows
from twitter_shared.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from twitter_shared.ids import IdGenerator
from twitter_shared.outbox import append_event
from twitter_shared.pagination import PageRequest

DEFAULT_SCOPES = "read"
GRANT_TYPES = frozenset({"client_credentials", "password", "authorization_code"})
KNOWN_SCOPES = {"read", "write", "follow", "push", "profile", "admin:read", "admin:write"}


def _now() -> datetime:
    return datetime.now(UTC)


def normalise_scopes(raw: str | list[str] | None, *, default: str = DEFAULT_SCOPES) -> str:
    """Return the space-separated scope list, rejecting unknown scopes; sub-scopes like ``read:statuses`` pass."""
    if raw is None or raw == "" or raw == []:
        return default
    parts = raw if isinstance(raw, list) else raw.replace("+", " ").split()
    for scope in parts:
        if scope not in KNOWN_SCOPES and scope.split(":", 1)[0] not in {"read", "write", "admin"}:
            raise ValidationFailed(f"Unknown scope {scope!r}")
    return " ".join(dict.fromkeys(parts))


def check_scopes_allowed(requested: str, allowed: str) -> None:
    """Reject scopes beyond what the app registered; ``write`` covers ``write:statuses``, not the reverse."""
    granted = set(allowed.split())
    beyond = [scope for scope in requested.split() if scope not in granted and scope.split(":", 1)[0] not in granted]
    if beyond:
        raise Forbidden(f"The requested scope is invalid, unknown, or malformed: {' '.join(beyond)} is not allowed for this app")


# --- OAuth apps and tokens -------------------------------------------------------------------


async def create_app(engine: AsyncEngine, ids: IdGenerator, *, fields: dict[str, Any]) -> dict[str, Any]:
    name = fields.get("client_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed("Validation failed: client_name must be 1 to 100 characters")
    redirect_uris = fields.get("redirect_uris") or "urn:ietf:wg:oauth:2.0:oob"
    if isinstance(redirect_uris, list):
        redirect_uris = "\n".join(redirect_uris)
    if not isinstance(redirect_uris, str) or len(redirect_uris) > 2000:
        raise ValidationFailed("Validation failed: redirect_uris is invalid")
    for uri in redirect_uris.split():
        if not authorization.acceptable_redirect_uri(uri):
            raise ValidationFailed(
                f"Validation failed: redirect_uris {uri!r} must be an absolute URI without a fragment,"
                " and not a javascript:, data:, vbscript: or file: URI"
            )
    website = fields.get("website") or None
    if website is not None and (not isinstance(website, str) or len(website) > 500):
        raise ValidationFailed("Validation failed: website is invalid")
    scopes = normalise_scopes(fields.get("scopes"))
    client_id = secrets.token_urlsafe(32)
    client_secret = credentials.new_secret()
    app_id = ids.next_id()
    async with transaction(engine) as connection:
        await connection.execute(
            oauth_apps.insert().values(
                id=app_id,
                name=name.strip(),
                website=website,
                redirect_uris=redirect_uris,
                scopes=scopes,
                client_id=client_id,
                client_secret_hash=credentials.secret_hash(client_secret),
                created_at=_now(),
            )
        )
    return {
        "id": str(app_id),
        "name": name.strip(),
        "website": website,
        "redirect_uri": redirect_uris,
        "redirect_uris": redirect_uris.split(),
        "scopes": scopes.split(),
        "client_id": client_id,
        "client_secret": client_secret,
        "vapid_key": "",
    }


async def _authenticated_app(connection: AsyncConnection, client_id: Any, client_secret: Any) -> Any:
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise Unauthorized("Client authentication failed: client_id and client_secret are required")
    app = (await connection.execute(select(oauth_apps).where(oauth_apps.c.client_id == client_id))).first()
    if app is None or not credentials.same_secret(client_secret, app.client_secret_hash):
        raise Unauthorized("Client authentication failed due to unknown client or wrong secret")
    return app


async def _insert_token(
    connection: AsyncConnection, ids: IdGenerator, *, app_id: int | None, account_id: int | None, scopes: str
) -> dict[str, Any]:
    token = credentials.new_secret()
    created = _now()
    await connection.execute(
        access_tokens.insert().values(
            id=ids.next_id(),
            token_hash=credentials.secret_hash(token),
            app_id=app_id,
            account_id=account_id,
            scopes=scopes,
            created_at=created,
        )
    )
    return {"access_token": token, "token_type": "Bearer", "scope": scopes, "created_at": int(created.timestamp())}


async def grant_token(engine: AsyncEngine, ids: IdGenerator, *, fields: dict[str, Any]) -> dict[str, Any]:
    """Issue a token for the ``client_credentials``, ``password`` or ``authorization_code`` grant."""
    grant_type = fields.get("grant_type")
    if not isinstance(grant_type, str) or grant_type not in GRANT_TYPES:
        raise ValidationFailed(f"Unsupported grant_type {grant_type!r}: use {', '.join(sorted(GRANT_TYPES))}")
    async with transaction(engine) as connection:
        app = await _authenticated_app(connection, fields.get("client_id"), fields.get("client_secret"))
        if grant_type == "authorization_code":
            # The scopes were fixed when the user approved the request.
            account_id, scopes = await authorization.redeem_code(connection, app=app, fields=fields)
            return await _insert_token(connection, ids, app_id=app.id, account_id=account_id, scopes=scopes)
        # The response's scope must cover what was asked for, so echo the request (the app's scopes if none).
        scopes = normalise_scopes(fields.get("scope") or fields.get("scopes"), default=app.scopes)
        check_scopes_allowed(scopes, app.scopes)
        if grant_type == "client_credentials":
            return await _insert_token(connection, ids, app_id=app.id, account_id=None, scopes=scopes)
    account_id = await account_for_login(engine, login=fields.get("username"), password=fields.get("password"))
    async with transaction(engine) as connection:
        return await _insert_token(connection, ids, app_id=app.id, account_id=account_id, scopes=scopes)


async def account_for_login(engine: AsyncEngine, *, login: Any, password: Any) -> int:
    """Return the account whose username or e-mail and password match; ``Unauthorized`` otherwise."""
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        raise ValidationFailed("A username (or e-mail) and a password are required")
    key = login.lower()
    async with read_only(engine) as connection:
        row = (
            await connection.execute(
                select(accounts.c.id, accounts.c.password_hash).where(
                    (accounts.c.email_key == key) | (accounts.c.username_key == key)
                )
            )
        ).first()
    if not await credentials.verify_password(row.password_hash if row else None, password):
        raise Unauthorized("Invalid username, e-mail or password")
    return row.id


async def authorize(engine: AsyncEngine, *, fields: dict[str, Any]) -> dict[str, str]:
    """Check an authorization request and the user's credentials; return a one-time code for the app."""
    client_id = fields.get("client_id")
    if not isinstance(client_id, str):
        raise ValidationFailed("client_id is required")
    async with read_only(engine) as connection:
        app = (await connection.execute(select(oauth_apps).where(oauth_apps.c.client_id == client_id))).first()
    if app is None:
        raise NotFound("Unknown client_id: register the app first")
    redirect_uri = authorization.checked_redirect_uri(app, fields.get("redirect_uri"))
    scopes = normalise_scopes(fields.get("scope") or fields.get("scopes"), default=app.scopes)
    check_scopes_allowed(scopes, app.scopes)
    account_id = await account_for_login(engine, login=fields.get("username"), password=fields.get("password"))
    async with transaction(engine) as connection:
        code = await authorization.issue_code(
            connection, app_id=app.id, account_id=account_id, scopes=scopes, redirect_uri=redirect_uri
        )
    return {"code": code, "redirect_uri": redirect_uri, "scope": scopes}


async def revoke_token(engine: AsyncEngine, *, fields: dict[str, Any]) -> None:
    """Revoke a token issued to the authenticated app; an unknown token is not an error (RFC 7009)."""
    token = fields.get("token")
    if not isinstance(token, str) or not token:
        raise ValidationFailed("token is required")
    async with transaction(engine) as connection:
        app = await _authenticated_app(connection, fields.get("client_id"), fields.get("client_secret"))
        row = (
            await connection.execute(select(access_tokens).where(access_tokens.c.token_hash == credentials.secret_hash(token)))
        ).first()
        if row is None:
            return
        if row.app_id != app.id:
            raise Forbidden("You are not authorized to revoke this token")
        if row.revoked_at is not None:
            return
        await connection.execute(
            update(access_tokens).where(access_tokens.c.id == row.id).values(revoked_at=_now())
        )
        # Gateways drop the token from their caches on this event, and they key those caches by this hash.
        await append_event(connection, outbox, kind="token.revoked", payload={"token_sha256": row.token_hash})


async def introspect(engine: AsyncEngine, *, token: str) -> dict[str, Any]:
    """Return who a live token belongs to; ``Unauthorized`` for unknown and revoked tokens."""
    async with read_only(engine) as connection:
        rows = await fetch_rows(connection, LIVE_TOKEN, token_hash=credentials.secret_hash(token))
    if not rows:
        raise Unauthorized("The access token is invalid")
    account_id, app_id, scopes = rows[0]
    return {
        "account_id": str(account_id) if account_id is not None else None,
        "app_id": str(app_id) if app_id is not None else None,
        "scopes": scopes,
    }


# Every request with a token not in a gateway's cache checks it here.
LIVE_TOKEN = DriverQuery(
    "SELECT account_id, app_id, scopes FROM access_tokens WHERE token_hash = :token_hash AND revoked_at IS NULL"
)


# --- Accounts --------------------------------------------------------------------------------


def account_dict(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "username": row.username,
        "display_name": row.display_name,
        "note": row.note,
        "locale": row.locale,
        "email": row.email,
        "followers_count": row.followers_count,
        "following_count": row.following_count,
        "created_at": row.created_at.isoformat() if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC).isoformat(),
    }


async def register(
    engine: AsyncEngine, ids: IdGenerator, *, fields: dict[str, Any], app_id: int | None, scopes: str
) -> dict[str, Any]:
    """Create an account and a token for it; a taken username or e-mail is a 422 with ``details``."""
    details = registration_errors(fields)
    if details:
        raise validation_failed(details)
    username, email = fields["username"], fields["email"]
    password_hash = await credentials.hash_password(fields["password"])
    account_id = ids.next_id()
    try:
        async with transaction(engine) as connection:
            await _check_available(connection, username=username, email=email)
            await connection.execute(
                accounts.insert().values(
                    id=account_id,
                    username=username,
                    username_key=username.lower(),
                    email=email,
                    email_key=email.lower(),
                    password_hash=password_hash,
                    display_name="",
                    note="",
                    locale=fields.get("locale") or "en",
                    followers_count=0,
                    following_count=0,
                    created_at=_now(),
                )
            )
            token = await _insert_token(connection, ids, app_id=app_id, account_id=account_id, scopes=scopes)
    except IntegrityError as error:
        # Two registrations raced past the check and a unique index decided; report the field that lost.
        async with read_only(engine) as connection:
            await _check_available(connection, username=username, email=email)
        raise validation_failed({"username": [{"error": "ERR_TAKEN", "description": "is already taken"}]}) from error
    return {"account_id": str(account_id), "token": token}


async def _check_available(connection: AsyncConnection, *, username: str, email: str) -> None:
    details: dict[str, list[dict[str, str]]] = {}
    taken = await connection.scalar(select(func.count()).where(accounts.c.username_key == username.lower()))
    if taken:
        details["username"] = [{"error": "ERR_TAKEN", "description": "is already taken"}]
    taken = await connection.scalar(select(func.count()).where(accounts.c.email_key == email.lower()))
    if taken:
        details["email"] = [{"error": "ERR_TAKEN", "description": "is already taken"}]
    if details:
        raise validation_failed(details)


async def get_accounts(engine: AsyncEngine, account_ids: list[int]) -> list[dict[str, Any]]:
    if not account_ids:
        return []
    async with read_only(engine) as connection:
        rows = await connection.execute(ACCOUNTS_BY_ID, {"ids": account_ids})
        return [account_dict(row) for row in rows]


# Built once: a gateway reads the authors of every page it renders through this.
ACCOUNTS_BY_ID = select(accounts).where(accounts.c.id.in_(bindparam("ids", expanding=True)))


async def get_account(engine: AsyncEngine, account_id: int) -> dict[str, Any]:
    found = await get_accounts(engine, [account_id])
    if not found:
        raise NotFound()
    return found[0]


async def lookup(engine: AsyncEngine, *, username: str) -> dict[str, Any]:
    async with read_only(engine) as connection:
        row = (await connection.execute(select(accounts).where(accounts.c.username_key == username.lower()))).first()
    if row is None:
        raise NotFound()
    return account_dict(row)


async def ids_by_username(engine: AsyncEngine, usernames: list[str]) -> dict[str, str]:
    """Map lower-cased usernames to account ids, for resolving mentions."""
    keys = sorted({name.lower() for name in usernames})
    if not keys:
        return {}
    async with read_only(engine) as connection:
        rows = await connection.execute(select(accounts.c.username_key, accounts.c.id).where(accounts.c.username_key.in_(keys)))
        return {row.username_key: str(row.id) for row in rows}


async def update_profile(engine: AsyncEngine, account_id: int, *, changes: dict[str, str]) -> dict[str, Any]:
    async with transaction(engine) as connection:
        if changes:
            changed = await connection.execute(update(accounts).where(accounts.c.id == account_id).values(**changes))
            if changed.rowcount:
                await append_event(connection, outbox, kind="account.updated", payload={"account_id": str(account_id)})
    return await get_account(engine, account_id)


async def delete_account(engine: AsyncEngine, account_id: int) -> None:
    """Delete an account with its tokens and follows (cascades), adjusting the counts of those it touched."""
    async with transaction(engine) as connection:
        exists = await connection.scalar(select(accounts.c.id).where(accounts.c.id == account_id))
        if exists is None:
            raise NotFound()
        followees = select(follows.c.followee_id).where(follows.c.follower_id == account_id)
        followers = select(follows.c.follower_id).where(follows.c.followee_id == account_id)
        await connection.execute(
            update(accounts).where(accounts.c.id.in_(followees)).values(followers_count=accounts.c.followers_count - 1)
        )
        await connection.execute(
            update(accounts).where(accounts.c.id.in_(followers)).values(following_count=accounts.c.following_count - 1)
        )
        await connection.execute(
            delete(follows).where((follows.c.follower_id == account_id) | (follows.c.followee_id == account_id))
        )
        await connection.execute(delete(access_tokens).where(access_tokens.c.account_id == account_id))
        await connection.execute(delete(accounts).where(accounts.c.id == account_id))
        await append_event(connection, outbox, kind="account.deleted", payload={"account_id": str(account_id)})


# --- Follows ---------------------------------------------------------------------------------


async def follow(engine: AsyncEngine, ids: IdGenerator, *, follower_id: int, followee_id: int) -> dict[str, Any]:
    if follower_id == followee_id:
        raise Forbidden("You cannot follow yourself")
    try:
        async with transaction(engine) as connection:
            await _require_accounts(connection, [follower_id, followee_id])
            already = await connection.scalar(
                select(func.count()).where(follows.c.follower_id == follower_id, follows.c.followee_id == followee_id)
            )
            if already:
                raise ValidationFailed("You are already following this account")
            await connection.execute(
                follows.insert().values(id=ids.next_id(), follower_id=follower_id, followee_id=followee_id, created_at=_now())
            )
            await _adjust_follow_counts(connection, follower_id=follower_id, followee_id=followee_id, delta=1)
            await append_event(
                connection, outbox, kind="follow.created", payload={"follower_id": str(follower_id), "followee_id": str(followee_id)}
            )
    except IntegrityError as error:
        raise ValidationFailed("You are already following this account") from error
    return (await relationships(engine, account_id=follower_id, target_ids=[followee_id]))[0]


async def unfollow(engine: AsyncEngine, *, follower_id: int, followee_id: int) -> dict[str, Any]:
    """Remove a follow; unfollowing an account you do not follow changes nothing and is not an error."""
    async with transaction(engine) as connection:
        await _require_accounts(connection, [followee_id])
        removed = await connection.execute(
            delete(follows).where(follows.c.follower_id == follower_id, follows.c.followee_id == followee_id)
        )
        if removed.rowcount:
            await _adjust_follow_counts(connection, follower_id=follower_id, followee_id=followee_id, delta=-1)
            await append_event(
                connection, outbox, kind="follow.deleted", payload={"follower_id": str(follower_id), "followee_id": str(followee_id)}
            )
    return (await relationships(engine, account_id=follower_id, target_ids=[followee_id]))[0]


async def _require_accounts(connection: AsyncConnection, account_ids: list[int]) -> None:
    found = await connection.scalar(select(func.count()).where(accounts.c.id.in_(account_ids)))
    if found != len(set(account_ids)):
        raise NotFound()


async def _adjust_follow_counts(connection: AsyncConnection, *, follower_id: int, followee_id: int, delta: int) -> None:
    # Rows are updated in id order. Two accounts following each other at the same moment would
    # otherwise lock them in opposite orders, and PostgreSQL aborts one with "deadlock detected".
    changes = sorted([(follower_id, accounts.c.following_count), (followee_id, accounts.c.followers_count)], key=lambda c: c[0])
    for account_id, column in changes:
        await connection.execute(update(accounts).where(accounts.c.id == account_id).values({column: column + delta}))


async def relationships(engine: AsyncEngine, *, account_id: int, target_ids: list[int]) -> list[dict[str, Any]]:
    async with read_only(engine) as connection:
        following = set(
            await connection.scalars(
                select(follows.c.followee_id).where(follows.c.follower_id == account_id, follows.c.followee_id.in_(target_ids))
            )
        )
        followed_by = set(
            await connection.scalars(
                select(follows.c.follower_id).where(follows.c.followee_id == account_id, follows.c.follower_id.in_(target_ids))
            )
        )
    return [
        {
            "id": str(target),
            "following": target in following,
            "showing_reblogs": target in following,
            "notifying": False,
            "languages": None,
            "followed_by": target in followed_by,
            "blocking": False,
            "blocked_by": False,
            "muting": False,
            "muting_notifications": False,
            "requested": False,
            "requested_by": False,
            "domain_blocking": False,
            "endorsed": False,
            "note": "",
        }
        for target in target_ids
    ]


async def follow_page(engine: AsyncEngine, *, account_id: int, direction: str, page: PageRequest) -> list[dict[str, Any]]:
    """List followers or followees of an account, newest follow first, paged by follow id."""
    if direction == "followers":
        mine, other = follows.c.followee_id, follows.c.follower_id
    else:
        mine, other = follows.c.follower_id, follows.c.followee_id
    async with read_only(engine) as connection:
        exists = await connection.scalar(select(accounts.c.id).where(accounts.c.id == account_id))
        if exists is None:
            raise NotFound()
        query = page.apply(
            select(follows.c.id.label("cursor"), accounts).join(accounts, accounts.c.id == other).where(mine == account_id),
            follows.c.id,
        )
        rows = list(await connection.execute(query))
    return [{"cursor": str(row.cursor), "account": account_dict(row)} for row in page.newest_first(rows)]


async def follows_after(engine: AsyncEngine, *, after_id: int, limit: int) -> list[dict[str, str]]:
    """Return follows in follow-id order, for rebuilding timelines from scratch."""
    async with read_only(engine) as connection:
        rows = await connection.execute(
            select(follows.c.id, follows.c.follower_id, follows.c.followee_id)
            .where(follows.c.id > after_id)
            .order_by(follows.c.id)
            .limit(limit)
        )
        return [{"id": str(r.id), "follower_id": str(r.follower_id), "followee_id": str(r.followee_id)} for r in rows]


async def follower_ids(engine: AsyncEngine, *, account_id: int) -> list[str]:
    async with read_only(engine) as connection:
        rows = await connection.scalars(select(follows.c.follower_id).where(and_(follows.c.followee_id == account_id)))
        return [str(r) for r in rows]


async def stats(engine: AsyncEngine) -> dict[str, int]:
    async with read_only(engine) as connection:
        return {"user_count": int(await connection.scalar(select(func.count()).select_from(accounts)) or 0)}
