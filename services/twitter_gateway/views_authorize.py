"""The OAuth authorization page: a user signs in and the app receives a one-time code.

``GET /oauth/authorize`` shows a sign-in form for the app's request;
``POST /oauth/authorize`` checks it and redirects to the app's redirect URI with
``code`` (and ``state``), or shows the code for the out-of-band URI that
command-line clients use. The app then exchanges the code at ``/oauth/token``.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web
from yarl import URL

from twitter_shared.errors import ServiceError, ValidationFailed
from twitter_shared.runtime import client
from twitter_shared.settings import ServiceName
from twitter_shared.web import read_json_object

OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"
# The request parameters the form carries from the GET to the POST.
CARRIED_FIELDS = ("client_id", "redirect_uri", "scope", "state", "response_type")

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main>
<h1>{title}</h1>
{body}
</main></body></html>
"""


def _page(title: str, body: str, *, status: int = 200) -> web.Response:
    text = PAGE.format(title=html.escape(title), body=body)
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; form-action 'self'"}
    return web.Response(text=text, status=status, content_type="text/html", headers=headers)


def _sign_in_form(fields: dict[str, Any], *, error: str | None = None, status: int = 200) -> web.Response:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(str(fields.get(name) or ""))}">' for name in CARRIED_FIELDS
    )
    message = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    scopes = html.escape(str(fields.get("scope") or "read"))
    body = (
        f"{message}<p>An application asks for access to your account with the scopes: <b>{scopes}</b>.</p>"
        f'<form method="post" action="/oauth/authorize">{hidden}'
        '<p><label>Username or e-mail <input name="username" autocomplete="username" required></label></p>'
        '<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>'
        '<p><button type="submit">Authorize</button></p></form>'
    )
    return _page("Authorize application", body, status=status)


def _check_response_type(fields: dict[str, Any]) -> None:
    if fields.get("response_type", "code") != "code":
        raise ValidationFailed("Unsupported response_type: only code is supported")


async def authorize_page(request: web.Request) -> web.Response:
    fields = dict(request.query)
    try:
        _check_response_type(fields)
    except ServiceError as error:
        return _page("Invalid request", f"<p>{html.escape(error.message)}</p>", status=error.status)
    if not fields.get("client_id"):
        return _page("Invalid request", "<p>client_id is required.</p>", status=400)
    return _sign_in_form(fields)


async def authorize(request: web.Request) -> web.Response:
    fields = await read_json_object(request)
    try:
        _check_response_type(fields)
        grant = await client(request.app, ServiceName.ACCOUNT).post("/internal/authorizations", body=fields)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return _sign_in_form(fields, error=error.message, status=error.status)
    if grant["redirect_uri"] == OUT_OF_BAND:
        body = f"<p>Copy this code into the application:</p><p><code>{html.escape(grant['code'])}</code></p>"
        return _page("Authorization code", body)
    query = {"code": grant["code"]}
    if fields.get("state"):
        query["state"] = str(fields["state"])
    return web.Response(status=302, headers={"Location": str(URL(grant["redirect_uri"]).update_query(query))})
