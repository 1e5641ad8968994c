"""``/openapi.json``: an OpenAPI 3.1 description of the public API, generated from the route table."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twitter_gateway.routes import ID as ID_PATTERN
from twitter_gateway.routes import PUBLIC_ROUTES
from twitter_gateway.views_instance import VERSION
from twitter_shared.web import json_response

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "details": {"type": "object"}},
    "required": ["error"],
}
PAGE_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
    for name in ("max_id", "since_id", "min_id", "limit")
]
PAGED_PATHS = ("/statuses", "/followers", "/following", "/timelines/home")


def build_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in PUBLIC_ROUTES:
        if route.path.endswith("/"):
            continue  # trailing-slash aliases that Mastodon.py requests; the same operation as without
        path = route.path.replace(ID_PATTERN, "{id}")
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": {}}}},
                "4XX": {"description": "Client error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "429": {"description": "Rate limit exceeded", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "503": {"description": "A service is unavailable", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        parameters = []
        if "{id}" in path:
            parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}})
        if route.method == "GET" and path.endswith(PAGED_PATHS):
            parameters.extend(PAGE_PARAMETERS)
        if parameters:
            operation["parameters"] = parameters
        if route.auth != "none":
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = {"description": "Missing or invalid token"}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Twitter System public API (a Mastodon-compatible subset)", "version": VERSION},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi_document(_request: web.Request) -> web.Response:
    return json_response(build_document())
