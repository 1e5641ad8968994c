"""The OAuth authorization_code grant: sign-in page, one-time code, token."""

from __future__ import annotations

import re

import pytest

from tests.support.api import PublicApi

APP_REDIRECT = "https://app.example/callback"


async def register_app(api: PublicApi, *, redirect_uris: str, scopes: str = "read write") -> dict:
    answer = await api.call("POST", "/api/v1/apps", data={"client_name": "web app", "redirect_uris": redirect_uris, "scopes": scopes})
    assert answer.status == 200
    return answer.body


async def sign_in(api: PublicApi, app: dict, **fields: str) -> object:
    form = {"client_id": app["client_id"], "response_type": "code", "scope": "read", **fields}
    return await api.call("POST", "/oauth/authorize", data=form, allow_redirects=False)


async def test_authorization_page_shows_a_sign_in_form(api: PublicApi) -> None:
    app = await register_app(api, redirect_uris=APP_REDIRECT)

    page = await api.call("GET", "/oauth/authorize", params={"client_id": app["client_id"], "scope": "read <b>", "response_type": "code"})

    assert page.status == 200
    assert '<form method="post" action="/oauth/authorize">' in page.body
    assert "read &lt;b&gt;" in page.body
    assert "<b>read <b>" not in page.body


async def test_code_redirects_to_the_app_and_buys_one_token(api: PublicApi) -> None:
    user = await api.register_user()
    app = await register_app(api, redirect_uris=APP_REDIRECT)

    answer = await sign_in(api, app, username=user.email, password=user.password, redirect_uri=APP_REDIRECT, state="xyz")
    location = answer.headers["Location"]
    code = re.search(r"code=([^&]+)", location).group(1)
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": APP_REDIRECT,
    }
    token = await api.call("POST", "/oauth/token", data=exchange)
    reused = await api.call("POST", "/oauth/token", data=exchange)

    assert answer.status == 302
    assert location.startswith(APP_REDIRECT + "?")
    assert "state=xyz" in location
    assert token.status == 200
    assert token.body["scope"] == "read"
    me = await api.call("GET", "/api/v1/accounts/verify_credentials", token=token.body["access_token"])
    assert me.body["id"] == user.id
    assert reused.status == 401


async def test_out_of_band_code_is_shown_on_the_page(api: PublicApi) -> None:
    user = await api.register_user()
    app = await register_app(api, redirect_uris="urn:ietf:wg:oauth:2.0:oob")

    answer = await sign_in(api, app, username=user.username, password=user.password)

    assert answer.status == 200
    assert "<code>" in answer.body


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"password": "wrong password"}, 401),
        ({"redirect_uri": "https://evil.example/steal"}, 422),
        ({"scope": "read write follow"}, 403),
        ({"response_type": "token"}, 422),
    ],
)
async def test_bad_authorization_requests_show_the_form_again(api: PublicApi, fields: dict, status: int) -> None:
    user = await api.register_user()
    app = await register_app(api, redirect_uris=APP_REDIRECT, scopes="read")
    form = {"username": user.email, "password": user.password, "redirect_uri": APP_REDIRECT, **fields}

    answer = await sign_in(api, app, **form)

    assert answer.status == status
    assert "Location" not in answer.headers
    assert 'role="alert"' in answer.body


async def test_code_of_another_app_is_rejected(api: PublicApi) -> None:
    user = await api.register_user()
    first = await register_app(api, redirect_uris=APP_REDIRECT)
    second = await register_app(api, redirect_uris=APP_REDIRECT)
    answer = await sign_in(api, first, username=user.email, password=user.password, redirect_uri=APP_REDIRECT)
    code = re.search(r"code=([^&]+)", answer.headers["Location"]).group(1)

    stolen = await api.call(
        "POST",
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": second["client_id"], "client_secret": second["client_secret"]},
    )

    assert stolen.status == 401


@pytest.mark.parametrize(
    "redirect_uris",
    [
        "javascript:alert(document.cookie)//",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "/relative/callback",
        "https://app.example/callback#fragment",
        "https://app.example/callback javascript:alert(1)",
    ],
    ids=["javascript", "javascript-mixed-case", "data", "vbscript", "file", "relative", "fragment", "second-uri"],
)
async def test_app_with_unsafe_redirect_uri_rejected(api: PublicApi, redirect_uris: str) -> None:
    answer = await api.call("POST", "/api/v1/apps", data={"client_name": "web app", "redirect_uris": redirect_uris})

    assert answer.status == 422
    assert "redirect_uris" in answer.body["error"]


@pytest.mark.parametrize(
    "redirect_uris", ["myapp://oauth/callback", "http://127.0.0.1:5000/callback", "urn:ietf:wg:oauth:2.0:oob"]
)
async def test_app_with_native_or_web_redirect_uri_accepted(api: PublicApi, redirect_uris: str) -> None:
    app = await register_app(api, redirect_uris=redirect_uris)

    assert app["redirect_uris"] == [redirect_uris]
