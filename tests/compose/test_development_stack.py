"""The development configuration (`docker compose up -d`) on the private Docker engine:
it starts healthy, publishes the gateway on 127.0.0.1:8080 alone, generates its service
token instead of reading one from a file, and serves the public API.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from mastodon import Mastodon

from tests.compose.stack import (
    DEVELOPMENT_FILES,
    OFFLINE_IMAGES,
    BuiltImages,
    ComposeProject,
    run,
)

pytestmark = pytest.mark.compose

BASE_URL = "http://127.0.0.1:8080"
PROJECT_NAME = "twitter-dev-e2e"
LONG_RUNNING = (
    "account",
    "post",
    "timeline",
    "gateway",
    "account-db",
    "post-db",
    "timeline-db",
)


@pytest.fixture(scope="module")
def development(built_images: BuiltImages) -> Iterator[ComposeProject]:
    project = ComposeProject(
        name=PROJECT_NAME, files=DEVELOPMENT_FILES, environment=dict(OFFLINE_IMAGES)
    )
    try:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        project.compose("up", "--detach", "--no-build", "--pull", "never", timeout=600)
        project.wait_healthy(LONG_RUNNING)
        yield project
    finally:
        project.save_logs()
        project.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "5", check=False
        )


def test_development_publishes_gateway_on_loopback_only(
    development: ComposeProject,
) -> None:
    bindings = {
        container["Config"]["Labels"]["com.docker.compose.service"]: container[
            "NetworkSettings"
        ]["Ports"]
        for container in development.running_containers()
    }
    published = {
        service: ports
        for service, ports in bindings.items()
        if any((ports or {}).values())
    }

    assert sorted(bindings) == sorted(LONG_RUNNING)
    assert list(published) == ["gateway"]
    assert published["gateway"]["8080/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": "8080"}
    ]


def test_development_generates_service_token(development: ComposeProject) -> None:
    gateway = development.container_ids("gateway")[0]
    token = run(
        ["docker", "exec", gateway, "cat", "/run/twitter-secrets/service-token"]
    ).stdout
    configured = json.loads(run(["docker", "inspect", gateway]).stdout)[0]["Config"][
        "Env"
    ]

    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert [
        entry for entry in configured if entry.startswith("TWITTER_SERVICE_TOKEN=")
    ] == []


def test_development_serves_public_api(development: ComposeProject) -> None:
    username = f"dev_{uuid.uuid4().hex[:6]}"
    client_id, client_secret = Mastodon.create_app(
        "compose dev e2e", api_base_url=BASE_URL
    )
    client = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=BASE_URL,
        request_timeout=15,
    )
    client.create_account(
        username,
        "correct horse battery staple",
        f"{username}@example.org",
        agreement=True,
    )
    posted = client.status_post("hello from development")

    assert client.account_verify_credentials().username == username
    assert (
        Mastodon(api_base_url=BASE_URL).status(posted.id).content
        == "<p>hello from development</p>"
    )
