"""One-time authorization codes of the OAuth ``authorization_code`` grant (RFC 6749 section 4.1).

A code is issued after the user signs in on the gateway's authorization page,
lives ten minutes, works once, and only for the app and redirect URI it was
issued to. Like tokens, codes are stored as SHA-256.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from twitter_account import credentials
from twitter_account.tables import authorization_codes
from twitter_shared.errors import Unauthorized, ValidationFailed

CODE_LIFETIME = timedelta(minutes=10)
OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"


# The browser runs or opens these itself instead of sending the code to a client: a redirect to one
# would hand the user's authorization code to a script.
FORBIDDEN_REDIRECT_SCHEMES = frozenset({"javascript", "data", "vbscript", "file"})


def acceptable_redirect_uri(uri: str) -> bool:
    """Tell whether an app may register ``uri``: absolute, no fragment, not a scheme the browser runs itself.

    Native apps use their own schemes (``myapp://callback``), so any other scheme is allowed.
    """
    parsed = urlsplit(uri)
    return bool(parsed.scheme) and not parsed.fragment and parsed.scheme.lower() not in FORBIDDEN_REDIRECT_SCHEMES


def checked_redirect_uri(app: Any, requested: Any) -> str:
    """Return the redirect URI to use; it must be one the app registered."""
    registered = app.redirect_uris.split()
    if requested in (None, ""):
        return registered[0] if registered else OUT_OF_BAND
    if requested not in registered:
        raise ValidationFailed("redirect_uri does not match any URI registered for this app")
    return requested


async def issue_code(
    connection: AsyncConnection, *, app_id: int, account_id: int, scopes: str, redirect_uri: str
) -> str:
    code = credentials.new_secret()
    await connection.execute(
        authorization_codes.insert().values(
            code_hash=credentials.secret_hash(code),
            app_id=app_id,
            account_id=account_id,
            scopes=scopes,
            redirect_uri=redirect_uri,
            expires_at=datetime.now(UTC) + CODE_LIFETIME,
        )
    )
    return code


async def redeem_code(connection: AsyncConnection, *, app: Any, fields: dict[str, Any]) -> tuple[int, str]:
    """Consume a code for ``app``; return the account and scopes it grants."""
    code = fields.get("code")
    if not isinstance(code, str) or not code:
        raise ValidationFailed("The authorization_code grant needs a code")
    # Deleting first makes the code single-use even when two requests race.
    consumed = (
        await connection.execute(
            delete(authorization_codes)
            .where(authorization_codes.c.code_hash == credentials.secret_hash(code))
            .returning(
                authorization_codes.c.app_id,
                authorization_codes.c.account_id,
                authorization_codes.c.scopes,
                authorization_codes.c.redirect_uri,
                authorization_codes.c.expires_at,
            )
        )
    ).first()
    if consumed is None or consumed.app_id != app.id:
        raise Unauthorized("The authorization code is invalid, expired or already used")
    expires_at = consumed.expires_at if consumed.expires_at.tzinfo else consumed.expires_at.replace(tzinfo=UTC)
    if expires_at < datetime.now(UTC):
        raise Unauthorized("The authorization code is invalid, expired or already used")
    requested_uri = fields.get("redirect_uri")
    if requested_uri not in (None, "") and requested_uri != consumed.redirect_uri:
        raise Unauthorized("redirect_uri does not match the one the code was issued for")
    return consumed.account_id, consumed.scopes
