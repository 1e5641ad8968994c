"""The public API's route table; the router and ``/openapi.json`` are both built from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from twitter_gateway import views_accounts, views_authorize, views_instance, views_oauth, views_statuses

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: str  # "none", "app" (any token) or "user"


# ASCII digits only: \d would also match other scripts' digits, which int() then accepts.
ID = "{id:[0-9]+}"

PUBLIC_ROUTES = [
    Route("POST", "/api/v1/apps", views_oauth.create_app, "Register a client application", "none"),
    Route("POST", "/oauth/token", views_oauth.grant_token, "Obtain a token (client_credentials or password grant)", "none"),
    Route("POST", "/oauth/revoke", views_oauth.revoke_token, "Revoke a token", "none"),
    Route("GET", "/oauth/authorize", views_authorize.authorize_page, "Sign-in page of the authorization_code grant", "none"),
    Route("POST", "/oauth/authorize", views_authorize.authorize, "Sign in and send the app a one-time code", "none"),
    Route("POST", "/api/v1/accounts", views_accounts.register, "Register an account; returns a user token", "app"),
    Route("GET", "/api/v1/accounts/verify_credentials", views_accounts.verify_credentials, "The token's own account", "user"),
    Route("PATCH", "/api/v1/accounts/update_credentials", views_accounts.update_credentials, "Update display name or note", "user"),
    Route("GET", "/api/v1/accounts/lookup", views_accounts.lookup, "Find an account by acct", "none"),
    Route("GET", "/api/v1/accounts/relationships", views_accounts.relationships, "Relationships with accounts (id[]=)", "user"),
    Route("GET", f"/api/v1/accounts/{ID}", views_accounts.get_account, "An account", "none"),
    Route("GET", f"/api/v1/accounts/{ID}/statuses", views_statuses.account_statuses, "An account's statuses", "none"),
    Route("GET", f"/api/v1/accounts/{ID}/followers", views_accounts.followers, "Accounts following this one", "none"),
    Route("GET", f"/api/v1/accounts/{ID}/following", views_accounts.following, "Accounts this one follows", "none"),
    Route("POST", f"/api/v1/accounts/{ID}/follow", views_accounts.follow, "Follow an account", "user"),
    Route("POST", f"/api/v1/accounts/{ID}/unfollow", views_accounts.unfollow, "Unfollow an account", "user"),
    Route("POST", "/api/v1/statuses", views_statuses.post_status, "Post a status (Idempotency-Key supported)", "user"),
    Route("GET", f"/api/v1/statuses/{ID}", views_statuses.get_status, "A status", "none"),
    Route("DELETE", f"/api/v1/statuses/{ID}", views_statuses.delete_status, "Delete your status", "user"),
    Route("GET", f"/api/v1/statuses/{ID}/context", views_statuses.status_context, "Ancestors and descendants", "none"),
    Route("POST", f"/api/v1/statuses/{ID}/favourite", views_statuses.status_action("favourite", "write:favourites"), "Favourite", "user"),
    Route("POST", f"/api/v1/statuses/{ID}/unfavourite", views_statuses.status_action("unfavourite", "write:favourites"), "Undo favourite", "user"),
    Route("POST", f"/api/v1/statuses/{ID}/reblog", views_statuses.status_action("reblog", "write:statuses"), "Reblog", "user"),
    Route("POST", f"/api/v1/statuses/{ID}/unreblog", views_statuses.status_action("unreblog", "write:statuses"), "Undo reblog", "user"),
    Route("GET", "/api/v1/timelines/home", views_statuses.home_timeline, "Home timeline, newest first", "user"),
    Route("GET", "/api/v1/instance", views_instance.instance_v1, "Instance document (v1)", "none"),
    Route("GET", "/api/v1/instance/", views_instance.instance_v1, "Instance document (v1), as Mastodon.py requests it", "none"),
    Route("GET", "/api/v2/instance", views_instance.instance_v2, "Instance document (v2)", "none"),
    Route("GET", "/api/v2/instance/", views_instance.instance_v2, "Instance document (v2), as Mastodon.py requests it", "none"),
]


def add_routes(router: web.UrlDispatcher) -> None:
    for route in PUBLIC_ROUTES:
        router.add_route(route.method, route.path, route.handler)
