"""The production configuration on a real Docker engine, driven through 127.0.0.1:8080
with the Mastodon.py client: the main flow, the network segmentation, recovery from a
killed process, the backup scheduler, and backup, wipe and restore.

The session fixture in conftest.py starts a private engine (compose/ci/engine.sh) and
builds every image offline (compose/ci/build-images.sh); the module fixture brings the
stack up and tears it down at the end, also when a test or the setup fails. The tests run in file order and share
the stack; the restore test wipes the databases and so comes last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mastodon import Mastodon, MastodonError

from tests.compose.stack import (
    BuiltImages,
    OFFLINE_IMAGES,
    PRODUCTION_FILES,
    ComposeProject,
    run,
    wait_for,
    write_env_file,
)

pytestmark = pytest.mark.compose

BASE_URL = "http://127.0.0.1:8080"
PROJECT_NAME = "twitter-e2e"
PASSWORD = "correct horse battery staple"
IMAGE_TARGETS = ("account", "post", "timeline", "gateway", "tools")
DATABASES = ("account-db", "post-db", "timeline-db")
LONG_RUNNING = (
    "account",
    "post",
    "timeline",
    "gateway",
    "edge",
    "backup-scheduler",
    *DATABASES,
)
# Registrations all arrive from the edge proxy's address; the per-address default
# (5 per 30 minutes) would stop the test's own users.
TEST_SETTINGS = {
    "TWITTER_REGISTRATION_LIMIT": "1000",
    "TWITTER_RATE_LIMIT_REQUESTS": "100000",
}
RECOVERY_TIMEOUT_SECONDS = 120
PROPAGATION_TIMEOUT_SECONDS = 30


@dataclass
class Stack:
    project: ComposeProject
    secrets: dict[str, str]
    canary: str | None
    users: dict[str, Mastodon] = field(default_factory=dict)


@pytest.fixture(scope="module")
def stack(
    built_images: BuiltImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env_file = tmp_path_factory.mktemp("compose") / "production.env"
    generated = write_env_file(env_file, extra=TEST_SETTINGS)
    project = ComposeProject(
        name=PROJECT_NAME,
        files=PRODUCTION_FILES,
        environment={**OFFLINE_IMAGES, "TWITTER_ENV_FILE": str(env_file)},
    )
    try:
        # Leftovers of an interrupted earlier run would keep old volumes.
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        project.compose("up", "--detach", "--no-build", "--pull", "never", timeout=600)
        project.wait_healthy(LONG_RUNNING)
        yield Stack(project=project, secrets=generated, canary=built_images.canary)
    finally:
        project.save_logs()
        project.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "5", check=False
        )


def new_user(username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app("compose e2e", api_base_url=BASE_URL)
    client = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=BASE_URL,
        request_timeout=15,
    )
    client.create_account(
        username, PASSWORD, f"{username}@example.org", agreement=True, locale="en"
    )
    return client


def all_statuses(client: Mastodon, account_id: str) -> list[Any]:
    return client.fetch_remaining(client.account_statuses(account_id, limit=40))


def all_following(client: Mastodon, account_id: str) -> list[Any]:
    return client.fetch_remaining(client.account_following(account_id, limit=40))


def home_ids(client: Mastodon) -> set[str]:
    return {
        status.id for status in client.fetch_remaining(client.timeline_home(limit=40))
    }


def test_every_container_is_healthy_and_only_edge_publishes(stack: Stack) -> None:
    containers = stack.project.running_containers()
    services = [
        container["Config"]["Labels"]["com.docker.compose.service"]
        for container in containers
    ]
    publishing = {
        container["Config"]["Labels"]["com.docker.compose.service"]
        for container in containers
        if any(
            bindings
            for bindings in (container["NetworkSettings"]["Ports"] or {}).values()
        )
    }
    unhealthy = [
        container["Name"]
        for container in containers
        if container["State"].get("Health", {}).get("Status") != "healthy"
    ]

    assert sorted(services) == sorted(
        [*LONG_RUNNING, "account", "post", "timeline", "gateway"]
    )
    assert unhealthy == []
    assert publishing == {"edge"}


def test_containers_run_as_non_root(stack: Stack) -> None:
    users = {}
    for service in ("account", "post", "timeline", "gateway", "backup-scheduler"):
        container = stack.project.container_ids(service)[0]
        users[service] = run(["docker", "exec", container, "id", "-u"]).stdout.strip()

    assert users == dict.fromkeys(users, "10001")


def test_images_carry_no_secrets(stack: Stack, tmp_path: Path) -> None:
    images = [f"twitter-system/{target}:latest" for target in IMAGE_TARGETS]
    configured = [
        json.loads(run(["docker", "image", "inspect", image]).stdout)[0]["Config"][
            "Env"
        ]
        for image in images
    ]
    archive = tmp_path / "images.tar"
    run(["docker", "save", "--output", str(archive), *images], timeout=300)
    needles = [*stack.secrets.values(), *([stack.canary] if stack.canary else [])]

    assert [
        entry
        for environment in configured
        for entry in environment
        if "TOKEN" in entry or "PASSWORD" in entry
    ] == []
    assert [
        needle for needle in needles if file_contains(archive, needle.encode())
    ] == []
    if stack.canary is None:
        pytest.skip(
            "compose/production.env exists in this checkout, so no canary went into the build context"
        )


def file_contains(path: Path, needle: bytes) -> bool:
    """Search a large file in chunks that overlap by the needle's length."""
    chunk_size = 16 * 1024 * 1024
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(chunk_size):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False


def test_main_flow_through_the_edge(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:6]
    alice = new_user(f"alice_{suffix}")
    bob = new_user(f"bob_{suffix}")
    carol = new_user(f"carol_{suffix}")
    stack.users.update(alice=alice, bob=bob, carol=carol)
    alice_id = alice.account_verify_credentials().id
    carol_id = carol.account_verify_credentials().id

    bob.account_follow(alice_id)
    bob.account_follow(carol_id)
    carol.account_follow(alice_id)
    first = alice.status_post(
        "Hello from the production stack", idempotency_key=f"first-{suffix}"
    )
    repeat = alice.status_post(
        "Hello from the production stack", idempotency_key=f"first-{suffix}"
    )
    reply = carol.status_reply(first, f"@alice_{suffix} welcome")
    favourited = bob.status_favourite(first.id)
    wait_for(
        lambda: {first.id, reply.id} <= home_ids(bob),
        timeout=PROPAGATION_TIMEOUT_SECONDS,
        description="both statuses in bob's home timeline",
    )
    instance = Mastodon(api_base_url=BASE_URL).instance()

    assert repeat.id == first.id
    assert favourited.favourites_count == 1
    assert [status.id for status in carol.status_context(first.id).descendants] == [
        reply.id
    ]
    assert [
        account.id
        for account in bob.account_following(bob.account_verify_credentials().id)
    ] != []
    assert re.fullmatch(r"\d+\.\d+\.\d+(\+.*)?", instance.version)


# Every attempt runs at once: a name Docker's DNS cannot resolve on the container's
# networks costs a resolver timeout of seconds, and the timeouts should not add up.
NETWORK_PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def attempt(host):
    try:
        socket.create_connection((host, 5432), timeout=3).close()
        return "connected"
    except socket.gaierror:
        return "unresolved"
    except OSError as error:
        return type(error).__name__

hosts = json.loads(sys.argv[1])
with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
    print(json.dumps(dict(zip(hosts, pool.map(attempt, hosts)))))
"""


def probe_databases(stack: Stack, container: str, hosts: list[str]) -> dict[str, str]:
    completed = run(
        [
            "docker",
            "exec",
            container,
            "python3",
            "-c",
            NETWORK_PROBE,
            json.dumps(hosts),
        ],
        timeout=120,
    )
    return json.loads(completed.stdout)


def database_addresses(stack: Stack) -> list[str]:
    addresses = []
    for database in DATABASES:
        container = stack.project.inspect(stack.project.container_ids(database)[0])
        addresses.extend(
            network["IPAddress"]
            for network in container["NetworkSettings"]["Networks"].values()
        )
    return addresses


def test_gateway_cannot_connect_to_any_database(stack: Stack) -> None:
    addresses = database_addresses(stack)
    results = {}
    for container in stack.project.container_ids("gateway"):
        results.update(probe_databases(stack, container, [*DATABASES, *addresses]))

    assert len(addresses) == len(DATABASES)
    assert {host: results[host] for host in DATABASES} == dict.fromkeys(
        DATABASES, "unresolved"
    )
    assert [address for address in addresses if results[address] == "connected"] == []


def test_service_reaches_only_its_own_database(stack: Stack) -> None:
    account = stack.project.container_ids("account")[0]

    results = probe_databases(stack, account, list(DATABASES))

    assert results == {
        "account-db": "connected",
        "post-db": "unresolved",
        "timeline-db": "unresolved",
    }


class Poster(threading.Thread):
    """Posts numbered statuses until stopped, retrying each with its idempotency key until acknowledged."""

    def __init__(self, client: Mastodon, *, label: str) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.label = label
        self.acknowledged: dict[str, str] = {}
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            text = f"{self.label} {number}"
            try:
                status = self.client.status_post(
                    text, idempotency_key=f"{self.label}-{number}"
                )
            except MastodonError:
                self.failures += 1
                time.sleep(0.2)
                continue
            self.acknowledged[status.id] = text
            number += 1


@pytest.mark.parametrize("service", ["post", "gateway"])
def test_killed_main_process_restarts_without_losing_posts(
    stack: Stack, service: str
) -> None:
    author = new_user(f"crash_{service}_{uuid.uuid4().hex[:6]}")
    author_id = author.account_verify_credentials().id
    container = stack.project.container_ids(service)[0]
    before = stack.project.inspect(container)["State"]
    poster = Poster(author, label=f"crash-{service}")
    poster.start()
    wait_for(
        lambda: len(poster.acknowledged) >= 5,
        timeout=60,
        description="five posts before the crash",
    )

    # From the host, as a crash would: `docker kill` is not treated as a crash by this engine.
    os.kill(before["Pid"], signal.SIGKILL)
    wait_for(
        lambda: stack.project.inspect(container)["RestartCount"] > 0
        and stack.project.inspect(container)["State"].get("Health", {}).get("Status")
        == "healthy"
        and stack.project.inspect(container)["State"]["Pid"] != before["Pid"],
        timeout=RECOVERY_TIMEOUT_SECONDS,
        description=f"the killed {service} container to be restarted and healthy",
    )
    acknowledged_before_recovery = len(poster.acknowledged)
    wait_for(
        lambda: len(poster.acknowledged) >= acknowledged_before_recovery + 5,
        timeout=60,
        description="five posts after the restart",
    )
    poster.stop.set()
    poster.join(timeout=30)
    stored = {status.id: status.content for status in all_statuses(author, author_id)}

    assert not poster.is_alive()
    assert stack.project.inspect(container)["State"]["Running"] is True
    assert set(poster.acknowledged) <= set(stored)
    assert len(stored) == len(poster.acknowledged)
    assert {stored[status_id] for status_id in poster.acknowledged} == {
        f"<p>{text}</p>" for text in poster.acknowledged.values()
    }


def scheduler_events(stack: Stack, event: str) -> list[dict[str, Any]]:
    """The scheduler's JSON log events named ``event``, from `docker compose logs`."""
    output = stack.project.compose(
        "logs", "--no-color", "--no-log-prefix", "backup-scheduler"
    ).stdout
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                events.append(record)
    return events


def test_scheduler_runs_on_the_default_four_hour_schedule(stack: Stack) -> None:
    (started,) = scheduler_events(stack, "backup_scheduler.started")
    next_runs = [
        record["at"] for record in scheduler_events(stack, "backup_scheduler.next_run")
    ]

    assert started["schedule"] == "0 */4 * * *"
    assert next_runs != []
    assert [
        re.fullmatch(r"\d{4}-\d\d-\d\dT(\d\d):00:00Z", at) is not None
        for at in next_runs
    ] == [True] * len(next_runs)
    assert [int(at[11:13]) % 4 for at in next_runs] == [0] * len(next_runs)


def list_backups(stack: Stack) -> list[str]:
    listing = stack.project.run_once("backup-scheduler", "ls", "-1", "/backups").stdout
    return sorted(
        name
        for name in listing.split()
        if re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]+", name)
    )


def test_scheduler_fires_on_a_shortened_schedule(stack: Stack) -> None:
    before = list_backups(stack)
    name = f"{PROJECT_NAME}-scheduler-test"
    # A second scheduler with a six-field (seconds) schedule, beside the real one.
    stack.project.compose(
        "run",
        "--detach",
        "--no-deps",
        "--name",
        name,
        "--env",
        "TWITTER_BACKUP_SCHEDULE=*/10 * * * * *",
        "--env",
        "TWITTER_BACKUP_KEEP=50",
        "backup-scheduler",
    )
    try:
        wait_for(
            lambda: len(list_backups(stack)) > len(before),
            timeout=90,
            description="a backup from the short schedule",
        )
        container_logs = run(["docker", "logs", name])
        logs = container_logs.stdout + container_logs.stderr
    finally:
        run(["docker", "rm", "--force", name], check=False)

    assert "*/10 * * * * *" in logs
    assert len(list_backups(stack)) > len(before)


def take_backup(stack: Stack) -> str:
    before = set(list_backups(stack))
    stack.project.run_once("backup-scheduler", "twitter-system", "backup")
    (created,) = set(list_backups(stack)) - before
    return created


CORRUPTIONS = {
    # Cut off the end of every dump, as a full disk or an interrupted copy would.
    "truncated": 'for dump in {copy}/*.pgdump; do truncate --size=-64 "$dump"; done',
    # Flip bytes in the middle of every dump, keeping its size.
    "corrupted": "for dump in {copy}/*.pgdump; do "
    'printf \'XXXXXXXX\' | dd of="$dump" bs=1 seek=$(( $(stat -c %s "$dump") / 2 )) conv=notrunc status=none; done',
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_restore_refuses_damaged_backup_before_any_change(
    stack: Stack, corruption: str
) -> None:
    alice = stack.users["alice"]
    backup = take_backup(stack)
    marker = alice.status_post(f"written after backup {backup}")
    copy = f"/tmp/damaged/{backup}"
    script = (
        f"mkdir -p /tmp/damaged && cp -r /backups/{backup} {copy} && "
        + CORRUPTIONS[corruption].format(copy=copy)
        + f" && exec twitter-system restore {copy}"
    )

    completed = stack.project.run_once(
        "backup-scheduler", "sh", "-c", script, check=False
    )

    assert completed.returncode == 4, completed.stdout + completed.stderr
    assert alice.status(marker.id).id == marker.id


def snapshot(stack: Stack) -> dict[str, Any]:
    """Every account, follow and status of the test's users, as the public API shows them."""
    reader = stack.users["alice"]
    accounts = {}
    for username in [
        user.account_verify_credentials().username for user in stack.users.values()
    ]:
        account = reader.account_lookup(username)
        accounts[username] = {
            "id": account.id,
            "following": sorted(
                followed.id for followed in all_following(reader, account.id)
            ),
            "statuses": sorted(
                (status.id, status.content)
                for status in all_statuses(reader, account.id)
            ),
        }
    return accounts


def test_restore_after_wiping_the_databases_brings_everything_back(
    stack: Stack,
) -> None:
    project = stack.project
    for name in ("dave", "erin"):
        stack.users[name] = new_user(f"{name}_{uuid.uuid4().hex[:6]}")
    stack.users["dave"].account_follow(
        stack.users["erin"].account_verify_credentials().id
    )
    posted = stack.users["erin"].status_post("erin's status, to be restored")
    wait_for(
        lambda: posted.id in home_ids(stack.users["dave"]),
        timeout=PROPAGATION_TIMEOUT_SECONDS,
        description="erin's status in dave's home timeline",
    )
    before = snapshot(stack)
    backup = take_backup(stack)

    project.compose(
        "stop", "edge", "gateway", "timeline", "post", "account", "backup-scheduler"
    )
    project.compose("rm", "--force", "--stop", *DATABASES)
    volumes = [
        f"{PROJECT_NAME}_{name}"
        for name in ("account-data", "post-data", "timeline-data")
    ]
    run(["docker", "volume", "rm", *volumes])
    project.compose("up", "--detach", "--no-build", "--pull", "never", *DATABASES)
    project.wait_healthy(DATABASES)
    restored = project.run_once(
        "backup-scheduler", "twitter-system", "restore", backup, check=False
    )
    project.compose("up", "--detach", "--no-build", "--pull", "never", timeout=600)
    project.wait_healthy(LONG_RUNNING)
    project.run_once("timeline", "twitter-system", "rebuild-timelines")
    after = snapshot(stack)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert after == before
    assert sum(len(account["statuses"]) for account in after.values()) > 0
    assert posted.id in home_ids(stack.users["dave"])
