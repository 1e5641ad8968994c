"""Gateway-wide behaviour: errors, request ids, rate limits, instance documents, internal routes."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from tests.support.api import PublicApi
from tests.support.stack import SERVICE_TOKEN, Stack
from twitter_shared.settings import ServiceName


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v1/instance/", "/api/v2/instance", "/api/v2/instance/"])
async def test_instance_documents_answer_with_and_without_slash(api: PublicApi, path: str) -> None:
    answer = await api.call("GET", path)

    assert answer.status == 200
    assert answer.body["version"] == "4.5.0+twitter-system"
    assert answer.body["configuration"]["statuses"]["max_characters"] == 500
    assert answer.body["configuration"]["statuses"]["characters_reserved_per_url"] == 23


async def test_instance_v2_declares_api_version_and_v1_counts(api: PublicApi) -> None:
    await api.register_user()

    v1 = await api.call("GET", "/api/v1/instance")
    v2 = await api.call("GET", "/api/v2/instance/")

    assert v2.body["api_versions"] == {"mastodon": 7}
    assert v1.body["stats"]["user_count"] == 1
    assert v1.body["stats"]["status_count"] == 0


async def test_request_id_is_propagated_or_assigned(api: PublicApi) -> None:
    given = await api.call("GET", "/api/v1/instance", headers={"X-Request-ID": "trace-123"})
    assigned = await api.call("GET", "/api/v1/instance")
    unsafe = await api.call("GET", "/api/v1/instance", headers={"X-Request-ID": "bad id\twith tab"})

    assert given.headers["X-Request-ID"] == "trace-123"
    assert len(assigned.headers["X-Request-ID"]) == 32
    assert unsafe.headers["X-Request-ID"] != "bad id\twith tab"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/api/v1/apps", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"x" * 70_000, "headers": {"Content-Type": "application/json"}}, 413),
        ("POST", "/api/v1/apps", {"data": b"client_name=\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"<xml/>", "headers": {"Content-Type": "application/xml"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"client_name=%ff%fe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"client_name=n", "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=bogus"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"abcde", "headers": {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"abcde", "headers": {"Content-Type": "application/json", "Content-Encoding": "deflate"}}, 400),
        ("POST", "/api/v1/apps", {"data": b"--XX\r\nbroken stuff", "headers": {"Content-Type": "multipart/form-data; boundary=XX"}}, 400),
        ("POST", "/api/v1/apps", {"data": {"client_name": ""}}, 422),
        ("POST", "/api/v1/apps", {"data": {"client_name": "x" * 101}}, 422),
        ("POST", "/api/v1/apps", {"data": {"client_name": "ok", "scopes": "read bogus"}}, 422),
        ("GET", "/api/v1/nothing-here", {}, 404),
        ("DELETE", "/api/v1/instance", {}, 405),
        ("POST", "/oauth/token", {"data": {"grant_type": "password"}}, 401),
        ("POST", "/oauth/revoke", {"data": {"token": "x"}}, 401),
        ("GET", "/api/v1/accounts/relationships", {}, 401),
        ("GET", "/api/v1/accounts/1/followers?limit=abc", {}, 422),
        ("GET", "/api/v1/accounts/1/followers?max_id=-5", {}, 422),
        ("GET", "/api/v1/accounts/1/followers?limit=0", {}, 422),
    ],
)
async def test_bad_requests_get_json_errors_never_500(
    api: PublicApi, method: str, path: str, kwargs: dict, status: int
) -> None:
    answer = await api.call(method, path, **kwargs)

    assert answer.status == status
    assert isinstance(answer.body, dict)
    assert isinstance(answer.body["error"], str)
    assert "Traceback" not in answer.body["error"]


async def test_bad_app_registration_changes_nothing(api: PublicApi, stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        before = await _count_apps(session, stack)
        await api.call("POST", "/api/v1/apps", data={"client_name": ""})
        after = await _count_apps(session, stack)

    assert before == after


async def _count_apps(session: aiohttp.ClientSession, stack: Stack) -> int:
    from sqlalchemy import func, select

    from twitter_account.tables import oauth_apps
    from twitter_shared.runtime import ENGINE

    engine = stack.app(ServiceName.ACCOUNT)[ENGINE]
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(oauth_apps)))


@pytest.mark.parametrize("path", ["/internal/apps", "/internal/accounts", "/internal/events", "/internal/stats"])
async def test_internal_routes_are_not_reachable_through_the_gateway(api: PublicApi, path: str) -> None:
    for method in ("GET", "POST"):
        answer = await api.call(method, path, headers={"X-Service-Token": SERVICE_TOKEN})

        assert answer.status in {404, 405}


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
async def test_internal_request_without_service_token_is_refused(stack: Stack, token: str | None) -> None:
    headers = {"X-Service-Token": token} if token is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.url(ServiceName.ACCOUNT) + "/internal/stats", headers=headers) as response:
            body = await response.json()

    assert response.status == 401
    assert body == {"error": "Missing or wrong service token"}


async def test_health_endpoints_answer_on_every_service(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        for service in stack.servers:
            for path in ("/healthz", "/readyz"):
                async with session.get(stack.url(service) + path) as response:
                    assert response.status == 200, (service, path, await response.text())
            async with session.get(stack.url(service) + "/metrics") as response:
                assert response.status == 200
                assert "http_requests_total" in await response.text()


async def test_openapi_document_lists_the_public_api(api: PublicApi) -> None:
    answer = await api.call("GET", "/openapi.json")

    assert answer.status == 200
    assert answer.body["openapi"].startswith("3.")
    assert "/api/v1/accounts/{id}/follow" in answer.body["paths"]
    assert "/api/v1/timelines/home" in answer.body["paths"]


async def test_token_scopes_cannot_exceed_the_apps(api: PublicApi) -> None:
    app = await api.call("POST", "/api/v1/apps", data={"client_name": "reader", "scopes": "read"})
    credentials = {"client_id": app.body["client_id"], "client_secret": app.body["client_secret"]}

    wider = await api.call("POST", "/oauth/token", data={"grant_type": "client_credentials", "scope": "read write", **credentials})
    narrower = await api.call("POST", "/oauth/token", data={"grant_type": "client_credentials", "scope": "read:accounts", **credentials})
    default = await api.call("POST", "/oauth/token", data={"grant_type": "client_credentials", **credentials})

    assert wider.status == 403
    assert narrower.status == 200
    assert narrower.body["scope"] == "read:accounts"
    assert default.body["scope"] == "read"


async def test_read_only_token_cannot_post(api: PublicApi) -> None:
    user = await api.register_user()
    login = await api.call(
        "POST",
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": api.client_id,
            "client_secret": api.client_secret,
            "username": user.email,
            "password": user.password,
            "scope": "read",
        },
    )

    answer = await api.call("POST", "/api/v1/statuses", token=login.body["access_token"], data={"status": "hi"})

    assert answer.status == 403


async def test_client_credentials_by_basic_authentication(api: PublicApi) -> None:
    encoded = base64.b64encode(f"{api.client_id}:{api.client_secret}".encode()).decode()
    answer = await api.call(
        "POST", "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {encoded}"}
    )

    assert answer.status == 200
    assert answer.body["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer caf\u00e9"},
        {"Authorization": "Bearer tab\there"},
    ],
)
async def test_token_with_non_ascii_bytes_is_401(api: PublicApi, headers: dict[str, str]) -> None:
    answer = await api.call("GET", "/api/v1/accounts/verify_credentials", headers=headers)

    assert answer.status == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/apps", {"data": {"client_name": "a\x00b"}}),
        ("POST", "/api/v1/apps", {"json": {"client_name": "a\x00b"}}),
        ("GET", "/api/v1/accounts/lookup?acct=a%00b", {}),
    ],
)
async def test_nul_characters_are_rejected(api: PublicApi, method: str, path: str, kwargs: dict) -> None:
    answer = await api.call(method, path, **kwargs)

    assert answer.status == 400
    assert "NUL" in answer.body["error"]


@pytest.mark.parametrize("inner", [b"[]", b'"a\\u0000b"'], ids=["plain", "nul-at-the-bottom"])
async def test_deeply_nested_body_is_a_client_error(api: PublicApi, inner: bytes) -> None:
    depth = 1000  # orjson reads up to 1,024 levels, past Python's recursion limit
    body = b'{"client_name": ' + b"[" * depth + inner + b"]" * depth + b"}"

    answer = await api.call("POST", "/api/v1/apps", data=body, headers={"Content-Type": "application/json"})

    assert answer.status == 400
    assert answer.body == {"error": "Request body is nested more than 32 levels deep"}


async def test_full_width_digits_are_not_ids(api: PublicApi) -> None:
    user = await api.register_user()
    full_width = "".join(chr(ord("０") + int(digit)) for digit in user.id)

    answer = await api.call("GET", f"/api/v1/accounts/{full_width}")

    assert answer.status == 404


async def test_statuses_of_unknown_account_is_404(api: PublicApi) -> None:
    answer = await api.call("GET", "/api/v1/accounts/12345/statuses")

    assert answer.status == 404


@pytest.mark.parametrize(
    "fields",
    [{"scheduled_at": "2030-01-01T00:00:00Z"}, {"media_ids[]": "1"}, {"poll[options][]": "a"}],
)
async def test_unsupported_status_features_are_rejected(api: PublicApi, fields: dict[str, str]) -> None:
    user = await api.register_user()

    answer = await api.call("POST", "/api/v1/statuses", token=user.token, data={"status": "later", **fields})

    assert answer.status == 422
    assert (await api.call("GET", f"/api/v1/accounts/{user.id}/statuses")).body == []


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/authorize"])
@pytest.mark.parametrize("field", ["grant_type", "client_id", "client_secret", "redirect_uri", "scope", "username", "password", "code"])
async def test_oauth_list_fields_are_no_server_errors(api: PublicApi, path: str, field: str) -> None:
    user = await api.register_user()
    fields = {
        "grant_type": "password",
        "client_id": api.client_id,
        "client_secret": api.client_secret,
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        "scope": "read",
        "username": user.username,
        "password": user.password,
        "code": "x",
        field: ["a", "b"],
    }

    answer = await api.call("POST", path, json=fields)

    # A field the flow does not read may be anything; one it reads must give a 4xx, never a 5xx.
    assert answer.status < 500, answer.body
