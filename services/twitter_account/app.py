"""The account service: accounts, credentials, OAuth apps, access tokens and the follow graph."""

from __future__ import annotations

from aiohttp import web

from twitter_account import views
from twitter_account.tables import outbox
from twitter_shared.runtime import build_internal_service, events, use_ids, use_outbox
from twitter_shared.settings import ServiceName, Settings

ID = r"{id:\d+}"


def create_app(settings: Settings) -> web.Application:
    app = build_internal_service(ServiceName.ACCOUNT, settings)
    use_ids(app)
    use_outbox(app, outbox=outbox, poll_seconds=settings.outbox_poll_seconds)
    add_routes(app.router)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/internal/apps", views.create_app)
    router.add_post("/internal/tokens", views.grant_token)
    router.add_post("/internal/tokens/revoke", views.revoke_token)
    router.add_post("/internal/authorizations", views.authorize)
    router.add_post("/internal/tokens/introspect", views.introspect)
    router.add_post("/internal/accounts", views.register)
    router.add_get("/internal/accounts", views.get_accounts)
    router.add_get("/internal/accounts/lookup", views.lookup)
    router.add_get("/internal/accounts/ids-by-username", views.ids_by_username)
    router.add_get(f"/internal/accounts/{ID}", views.get_account)
    router.add_patch(f"/internal/accounts/{ID}", views.update_profile)
    router.add_delete(f"/internal/accounts/{ID}", views.delete_account)
    router.add_post(f"/internal/accounts/{ID}/follow", views.follow)
    router.add_post(f"/internal/accounts/{ID}/unfollow", views.unfollow)
    router.add_get(f"/internal/accounts/{ID}/relationships", views.relationships)
    router.add_get(f"/internal/accounts/{ID}/followers", views.followers)
    router.add_get(f"/internal/accounts/{ID}/following", views.following)
    router.add_get(f"/internal/accounts/{ID}/follower-ids", views.follower_ids)
    router.add_get("/internal/follows", views.all_follows)
    router.add_get("/internal/events", events)
    router.add_get("/internal/stats", views.stats)
