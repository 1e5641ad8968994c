"""A small public-API client for tests: registers apps and users and keeps their tokens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp

_counter = itertools.count(1)


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


@dataclass
class User:
    username: str
    email: str
    password: str
    token: str
    id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class PublicApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.client_id = ""
        self.client_secret = ""
        self.app_token = ""

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Answer:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base_url + path, headers=headers, **kwargs) as response:
            raw = await response.read()
            try:
                body = await response.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return Answer(response.status, body, response.headers)

    async def register_app(self) -> None:
        answer = await self.call(
            "POST", "/api/v1/apps", data={"client_name": "tests", "scopes": "read write follow", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
        assert answer.status == 200, answer.body
        self.client_id, self.client_secret = answer.body["client_id"], answer.body["client_secret"]
        token = await self.call(
            "POST",
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret, "scope": "read write follow"},
        )
        assert token.status == 200, token.body
        self.app_token = token.body["access_token"]

    async def register_user(self, username: str | None = None, *, password: str = "correct horse battery") -> User:
        if not self.app_token:
            await self.register_app()
        username = username or f"user{next(_counter)}"
        email = f"{username.lower()}@example.org"
        answer = await self.call(
            "POST",
            "/api/v1/accounts",
            token=self.app_token,
            data={"username": username, "email": email, "password": password, "agreement": "1", "locale": "en"},
        )
        assert answer.status == 200, answer.body
        token = answer.body["access_token"]
        me = await self.call("GET", "/api/v1/accounts/verify_credentials", token=token)
        assert me.status == 200, me.body
        return User(username=username, email=email, password=password, token=token, id=me.body["id"])

    async def password_login(self, login: str, password: str) -> Answer:
        return await self.call(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "username": login,
                "password": password,
                "scope": "read write follow",
            },
        )
