"""The dataset's accounts on a running system: registered, or found again and logged in to.

A known token is tried first (``verify_credentials``). Without one, the loader
looks the username up and registers the account if it is not found. A username
that exists (or a registration answered 422 ``ERR_TAKEN``) means an earlier run
registered it, so the deterministic password logs in. The checker
and the benchmarks never register: they log in or fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from twitter_tools._dataset import Credentials, credentials
from twitter_tools._public_client import ClientError, Progress, PublicClient, TokenFile, UnexpectedAnswer

# Registration and the password grant each cost the server one argon2 hash. More of them at once
# only queue up on the server's CPU and run into the gateway's timeout for internal calls.
PASSWORD_CALLS_IN_FLIGHT = 8


class AccountMissing(ClientError):
    """A dataset account does not exist, or its password differs from the seed's."""


@dataclass
class DatasetAccount:
    node: int
    username: str
    id: str
    token: str
    following_count: int
    statuses_count: int
    created: bool


async def resolve_accounts(
    client: PublicClient,
    app: tuple[str, str, str],
    nodes: list[int],
    *,
    seed: str,
    tokens: TokenFile,
    register: bool,
    progress_event: str,
) -> dict[int, DatasetAccount]:
    """Return every node's account, registering missing ones when ``register`` is true.

    Without ``register``, a node whose account does not exist (deleted, or never loaded) is left out.
    """
    progress = Progress(progress_event, "accounts", len(nodes))
    password_slots = asyncio.Semaphore(PASSWORD_CALLS_IN_FLIGHT)

    async def resolve(node: int) -> DatasetAccount | None:
        login = credentials(node, seed=seed)
        account = await _resolve_one(client, app, login, tokens=tokens, register=register, password_slots=password_slots)
        progress.advance()
        return account

    try:
        resolved = await asyncio.gather(*(resolve(node) for node in nodes))
    finally:
        tokens.save()
    return {account.node: account for account in resolved if account is not None}


async def _resolve_one(
    client: PublicClient,
    app: tuple[str, str, str],
    login: Credentials,
    *,
    tokens: TokenFile,
    register: bool,
    password_slots: asyncio.Semaphore,
) -> DatasetAccount | None:
    known = tokens.tokens.get(login.username)
    if known is not None:
        answer = await client.call("GET", "/api/v1/accounts/verify_credentials", token=known)
        if answer.status == 200 and answer.body["username"] == login.username:
            return _account(login, known, answer.body, created=False)

    # A look-up costs the server no password hash, so each account costs one hash, not two.
    exists = (await client.call("GET", "/api/v1/accounts/lookup", params={"acct": login.username})).status == 200
    if not exists and not register:
        return None
    created = False
    token = None
    async with password_slots:
        if register and not exists:
            token = await _register(client, app, login)
            created = token is not None
        if token is None:
            token = await _log_in(client, app, login)
    tokens.tokens[login.username] = token
    me = await client.expect("GET", "/api/v1/accounts/verify_credentials", token=token)
    return _account(login, token, me, created=created)


async def _register(client: PublicClient, app: tuple[str, str, str], login: Credentials) -> str | None:
    """Register the account and return its token, or None when the username is taken."""
    answer = await client.call(
        "POST",
        "/api/v1/accounts",
        token=app[2],
        data={"username": login.username, "email": login.email, "password": login.password, "agreement": "1", "locale": "en"},
    )
    if answer.status == 200:
        return answer.body["access_token"]
    details = answer.body.get("details", {}) if isinstance(answer.body, dict) else {}
    taken = any(item.get("error") == "ERR_TAKEN" for item in details.get("username", []))
    if answer.status == 422 and taken:
        return None
    raise UnexpectedAnswer("POST", "/api/v1/accounts", answer)


async def _log_in(client: PublicClient, app: tuple[str, str, str], login: Credentials) -> str:
    answer = await client.log_in(app, login)
    if answer.status == 200:
        return answer.body["access_token"]
    if answer.status in {400, 401, 403}:
        raise AccountMissing(
            f"cannot log in as {login.username} ({answer.status} {answer.error}): the account is missing "
            "(run `twitter-system load` first) or was registered with another --password-seed"
        )
    raise UnexpectedAnswer("POST", "/oauth/token", answer)


def _account(login: Credentials, token: str, me: dict, *, created: bool) -> DatasetAccount:
    return DatasetAccount(
        node=login.node,
        username=login.username,
        id=me["id"],
        token=token,
        following_count=me["following_count"],
        statuses_count=me["statuses_count"],
        created=created,
    )
