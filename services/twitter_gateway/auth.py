"""Access-token checks for the public API, with a short cache.

The account service is the authority on tokens. The gateway checks each token with it
once and trusts the result for a while. A revocation made through this process drops
the token at once, and one made elsewhere reaches this process through the account
events (``account_events``). Tokens are cached by their SHA-256, never in clear.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from aiohttp import web

from twitter_gateway.account_events import EventCoverage
from twitter_shared.client import InternalClient
from twitter_shared.errors import Forbidden, Unauthorized

CACHE_MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class Viewer:
    account_id: int | None
    app_id: int | None
    scopes: frozenset[str]

    def require_user(self) -> int:
        if self.account_id is None:
            raise Unauthorized("This method requires an authenticated user")
        return self.account_id

    def require_scope(self, *accepted: str) -> None:
        """Pass when the token has any of ``accepted`` or its top-level parent (``write`` covers ``write:statuses``)."""
        for scope in accepted:
            if scope in self.scopes or scope.split(":", 1)[0] in self.scopes:
                return
        raise Forbidden("This action is outside the authorized scopes")


class TokenChecker:
    """An access-token checker that asks the account service and keeps each result for a while.

    A result stays ``cache_seconds``, or ``coverage.seconds`` while the account events are
    followed (see ``account_events``), which drop a revoked token within moments.
    """

    def __init__(self, *, accounts: InternalClient, cache_seconds: float, coverage: EventCoverage | None = None) -> None:
        self.accounts = accounts
        self.cache_seconds = cache_seconds
        self.coverage = coverage or EventCoverage(seconds=0)
        # Results by token hash, each with the monotonic time it was stored.
        self._cache: dict[str, tuple[float, Viewer | None]] = {}
        # The number of forget calls so far. A check that began before a forget does not store its
        # result, because the account service may have replied before the revocation committed.
        self._forgets = 0

    async def check(self, token: str) -> Viewer:
        key = _cache_key(token)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and self._fresh(cached[0], now):
            if cached[1] is None:
                raise Unauthorized("The access token is invalid")
            return cached[1]
        forgets_before = self._forgets
        try:
            info = await self.accounts.post("/internal/tokens/introspect", body={"token": token}, idempotent=True)
        except Unauthorized:
            if self._forgets == forgets_before:
                self._remember(key, None, now)
            raise
        viewer = Viewer(
            account_id=int(info["account_id"]) if info["account_id"] else None,
            app_id=int(info["app_id"]) if info["app_id"] else None,
            scopes=frozenset(info["scopes"].split()),
        )
        if self._forgets == forgets_before:
            self._remember(key, viewer, now)
        return viewer

    def forget(self, token: str) -> None:
        """Stop trusting ``token`` in this process at once, as after a revocation made through it."""
        self.forget_hash(_cache_key(token))

    def forget_hash(self, token_sha256: str) -> None:
        """Stop trusting the token with this SHA-256 (hex), as the account events name it."""
        self._forgets += 1
        self._cache.pop(token_sha256, None)

    def forget_account(self, account_id: int) -> None:
        """Stop trusting every token of a deleted account."""
        self._forgets += 1
        self._cache = {key: entry for key, entry in self._cache.items() if entry[1] is None or entry[1].account_id != account_id}

    def clear(self) -> None:
        self._forgets += 1
        self._cache = {}

    def _fresh(self, stored_at: float, now: float) -> bool:
        return now - stored_at < self.cache_seconds or self.coverage.keeps(stored_at, now)

    def _remember(self, key: str, viewer: Viewer | None, now: float) -> None:
        if self.cache_seconds <= 0:
            return
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if self._fresh(v[0], now)}
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
        self._cache[key] = (now, viewer)


def _cache_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKENS = web.AppKey("tokens", TokenChecker)
# The viewer is resolved once per request, by the rate limiter or the handler, whichever needs it first.
VIEWER = web.RequestKey("viewer", object)


def bearer_token(request: web.Request) -> str | None:
    """Return the access token from the Authorization header or the ``access_token`` parameter."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    token = token or request.query.get("access_token") or ""
    if not token:
        return None
    # Our tokens are URL-safe ASCII; anything else (raw Latin-1 bytes, controls) cannot be one.
    if not token.isascii() or not token.isprintable():
        raise Unauthorized("The access token is invalid")
    return token


async def optional_viewer(request: web.Request) -> Viewer | None:
    """Return the viewer behind the request's token, None without a token; a bad token is a 401."""
    if VIEWER in request:
        return request[VIEWER]
    token = bearer_token(request)
    viewer = None
    if token is not None:
        viewer = await request.app[TOKENS].check(token)
    request[VIEWER] = viewer
    return viewer


async def require_viewer(request: web.Request) -> Viewer:
    viewer = await optional_viewer(request)
    if viewer is None:
        raise Unauthorized("The access token is invalid")
    return viewer


async def require_user(request: web.Request, *scopes: str) -> int:
    viewer = await require_viewer(request)
    account_id = viewer.require_user()
    if scopes:
        viewer.require_scope(*scopes)
    return account_id
