"""The instance documents (``/api/v1/instance`` and ``/api/v2/instance``) clients read first.

Mastodon.py reads them on connect and loops when v1 fails, so these must answer
even while a service is down: the counts are cached and, on failure, the last
known values are served.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web

from twitter_gateway.hydrate import base_url
from twitter_shared.errors import ServiceError
from twitter_shared.runtime import SETTINGS, client
from twitter_shared.settings import ServiceName
from twitter_shared.web import json_response

log = structlog.get_logger()

# Mastodon version whose client API this server follows; the suffix names this server.
MASTODON_VERSION = "4.5.0"
VERSION = f"{MASTODON_VERSION}+twitter-system"
MASTODON_API_VERSION = 7
MAX_CHARACTERS = 500
CHARACTERS_RESERVED_PER_URL = 23
STATS_CACHE_SECONDS = 30.0


class InstanceStats:
    def __init__(self) -> None:
        self.values = {"user_count": 0, "status_count": 0}
        self.fetched_at = 0.0

    async def current(self, app: web.Application) -> dict[str, int]:
        if time.monotonic() - self.fetched_at < STATS_CACHE_SECONDS:
            return self.values
        try:
            accounts, posts = await asyncio.gather(
                client(app, ServiceName.ACCOUNT).get("/internal/stats"),
                client(app, ServiceName.POST).get("/internal/stats"),
            )
        except ServiceError as error:
            log.warning("instance.stats_unavailable", error=error.message, action="serving the last known counts")
            return self.values
        self.values = {"user_count": accounts["user_count"], "status_count": posts["status_count"]}
        self.fetched_at = time.monotonic()
        return self.values


INSTANCE_STATS = web.AppKey("instance_stats", InstanceStats)


def _statuses_configuration() -> dict[str, Any]:
    return {
        "max_characters": MAX_CHARACTERS,
        "max_media_attachments": 0,
        "characters_reserved_per_url": CHARACTERS_RESERVED_PER_URL,
    }


async def instance_v1(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    stats = await request.app[INSTANCE_STATS].current(request.app)
    root = base_url(request)
    return json_response({
        "uri": settings.instance_domain,
        "title": settings.instance_title,
        "short_description": "A self-hosted Twitter-like network.",
        "description": "A self-hosted Twitter-like network.",
        "email": "",
        "version": VERSION,
        "urls": {"streaming_api": root.replace("http", "ws", 1)},
        "stats": {**stats, "domain_count": 1},
        "thumbnail": None,
        "languages": ["en"],
        "registrations": True,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {
            "accounts": {"max_featured_tags": 0},
            "statuses": _statuses_configuration(),
            "media_attachments": {"supported_mime_types": [], "image_size_limit": 0, "video_size_limit": 0},
            "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
        },
        "contact_account": None,
        "rules": [],
    })


async def instance_v2(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    root = base_url(request)
    return json_response({
        "domain": settings.instance_domain,
        "title": settings.instance_title,
        "version": VERSION,
        "source_url": "",
        "description": "A self-hosted Twitter-like network.",
        "usage": {"users": {"active_month": (await request.app[INSTANCE_STATS].current(request.app))["user_count"]}},
        "thumbnail": {"url": root + "/thumbnail.png"},
        "languages": ["en"],
        "configuration": {
            "urls": {"streaming": root.replace("http", "ws", 1)},
            "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
            "statuses": _statuses_configuration(),
            "media_attachments": {"supported_mime_types": [], "image_size_limit": 0, "video_size_limit": 0},
            "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
            "translation": {"enabled": False},
        },
        "registrations": {"enabled": True, "approval_required": False, "message": None},
        "contact": {"email": "", "account": None},
        "rules": [],
        "api_versions": {"mastodon": MASTODON_API_VERSION},
    })
