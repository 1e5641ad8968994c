"""The Compose files as Compose itself reads them: both programs accept them, and the
merged production configuration keeps the network segmentation, port and hardening rules.

These tests run the compose programs' `config` only; no engine is needed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.compose.stack import (
    DEVELOPMENT_FILES,
    PRODUCTION_FILES,
    REPO,
    SECRET_VARIABLES,
    compose_config,
    merged_config,
    require_programs,
)
from twitter_shared.settings import Settings

pytestmark = pytest.mark.compose

EXAMPLE_ENV = {"TWITTER_ENV_FILE": "compose/production.env.example"}
DATABASE_NETWORKS = {
    "account-db": "account-data",
    "post-db": "post-data",
    "timeline-db": "timeline-data",
}
SERVICES = ("account", "post", "timeline", "gateway")
MIGRATION_JOBS = ("account-migrate", "post-migrate", "timeline-migrate")
# Each database network: the database, its service and migration job, and the
# backup scheduler where the database is backed up (timeline is rebuilt instead).
EXPECTED_DATABASE_NETWORK_MEMBERS = {
    "account-data": {"account-db", "account", "account-migrate", "backup-scheduler"},
    "post-data": {"post-db", "post", "post-migrate", "backup-scheduler"},
    "timeline-data": {"timeline-db", "timeline", "timeline-migrate"},
}


@pytest.fixture(scope="module", autouse=True)
def _compose_programs() -> None:
    require_programs(purpose="the Compose configuration tests")


@pytest.fixture(scope="module")
def production() -> dict[str, Any]:
    return merged_config(files=PRODUCTION_FILES, environment=EXAMPLE_ENV)


@pytest.fixture(scope="module")
def development() -> dict[str, Any]:
    return merged_config(files=DEVELOPMENT_FILES)


def network_members(config: dict[str, Any], network: str) -> set[str]:
    return {
        name
        for name, service in config["services"].items()
        if network in (service.get("networks") or {})
    }


def published_ports(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: service["ports"]
        for name, service in config["services"].items()
        if service.get("ports")
    }


@pytest.mark.parametrize("version", [2, 1], ids=["compose-v2", "docker-compose-1.29"])
@pytest.mark.parametrize(
    ("files", "environment"),
    [(DEVELOPMENT_FILES, {}), (PRODUCTION_FILES, EXAMPLE_ENV)],
    ids=["development", "production"],
)
def test_compose_accepts_configuration(
    files: tuple[str, ...], environment: dict[str, str], version: int
) -> None:
    completed = compose_config(files=files, environment=environment, version=version)

    assert completed.returncode == 0, completed.stderr
    assert "services" in completed.stdout


def test_production_without_env_file_is_rejected() -> None:
    completed = compose_config(
        files=PRODUCTION_FILES, environment={"TWITTER_ENV_FILE": "compose/missing.env"}
    )

    assert completed.returncode != 0
    assert "missing.env" in completed.stderr


@pytest.mark.parametrize(("database", "network"), sorted(DATABASE_NETWORKS.items()))
def test_database_is_only_on_its_own_network(
    production: dict[str, Any], database: str, network: str
) -> None:
    assert set(production["services"][database]["networks"]) == {network}


@pytest.mark.parametrize(
    ("network", "members"), sorted(EXPECTED_DATABASE_NETWORK_MEMBERS.items())
)
def test_database_network_holds_only_its_owner(
    production: dict[str, Any], network: str, members: set[str]
) -> None:
    assert network_members(production, network) == members


def test_gateway_reaches_no_database_network(production: dict[str, Any]) -> None:
    assert set(production["services"]["gateway"]["networks"]) == {"services", "outside"}
    assert set(production["services"]["edge"]["networks"]) == {"outside"}


def test_services_network_holds_the_four_services(production: dict[str, Any]) -> None:
    assert network_members(production, "services") == set(SERVICES)


def test_outside_network_holds_gateway_and_edge(production: dict[str, Any]) -> None:
    assert network_members(production, "outside") == {"gateway", "edge"}


@pytest.mark.parametrize(
    "network", ["account-data", "post-data", "timeline-data", "services"]
)
def test_inner_network_is_internal(production: dict[str, Any], network: str) -> None:
    assert production["networks"][network].get("internal") is True


def test_production_publishes_only_the_edge(production: dict[str, Any]) -> None:
    ports = published_ports(production)

    assert list(ports) == ["edge"]
    assert [
        (port["target"], port["published"], port.get("host_ip"))
        for port in ports["edge"]
    ] == [(8080, "8080", None)]


def test_development_publishes_only_the_gateway_on_loopback(
    development: dict[str, Any],
) -> None:
    ports = published_ports(development)

    assert list(ports) == ["gateway"]
    assert [
        (port["target"], port["published"], port["host_ip"])
        for port in ports["gateway"]
    ] == [(8080, "8080", "127.0.0.1")]


@pytest.mark.parametrize("service", SERVICES)
def test_production_service_is_replicated_and_hardened(
    production: dict[str, Any], service: str
) -> None:
    definition = production["services"][service]

    assert definition["deploy"]["replicas"] >= 2
    assert definition["restart"] == "always"
    assert definition["read_only"] is True
    assert "/tmp" in definition["tmpfs"]
    assert definition["deploy"]["resources"]["limits"]["memory"]
    assert definition["deploy"]["resources"]["limits"]["cpus"]
    assert definition["cap_drop"] == ["ALL"]


@pytest.mark.parametrize("service", [*DATABASE_NETWORKS, "edge", "backup-scheduler"])
def test_production_support_container_is_hardened(
    production: dict[str, Any], service: str
) -> None:
    definition = production["services"][service]

    assert definition["restart"] == "always"
    assert definition["read_only"] is True
    assert definition["deploy"]["resources"]["limits"]["memory"]
    assert definition.get("healthcheck", {}).get("test")


@pytest.mark.parametrize("job", MIGRATION_JOBS)
def test_service_waits_for_its_migration_job(
    production: dict[str, Any], job: str
) -> None:
    service = job.removesuffix("-migrate")

    assert (
        production["services"][service]["depends_on"][job]["condition"]
        == "service_completed_successfully"
    )
    assert production["services"][job].get("restart", "no") == "no"
    assert (
        production["services"][job]["depends_on"][f"{service}-db"]["condition"]
        == "service_healthy"
    )


def test_backup_schedule_defaults_to_every_four_hours(
    production: dict[str, Any],
) -> None:
    scheduler = production["services"]["backup-scheduler"]

    assert Settings.model_fields["backup_schedule"].default == "0 */4 * * *"
    assert scheduler["environment"]["TWITTER_BACKUP_SCHEDULE"] == "0 */4 * * *"
    assert scheduler["environment"]["TWITTER_BACKUP_DIR"] == "/backups"
    assert [volume["target"] for volume in scheduler["volumes"]] == ["/backups"]
    assert scheduler["command"] == ["twitter-system", "backup-scheduler"]


def test_example_env_file_lists_every_variable_production_reads() -> None:
    example = (REPO / "compose" / "production.env.example").read_text()
    production_file = (REPO / "docker-production.yml").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    # Variables the database entry points read from the env file ($$NAME in the file).
    read_by_containers = set(re.findall(r"\$\$([A-Z][A-Z0-9_]*)", production_file))

    assert read_by_containers <= listed
    assert set(SECRET_VARIABLES) <= listed
    assert {
        "TWITTER_ACCOUNT_DATABASE_URL",
        "TWITTER_POST_DATABASE_URL",
        "TWITTER_TIMELINE_DATABASE_URL",
    } <= listed
    assert {"TWITTER_BACKUP_SCHEDULE", "TWITTER_BACKUP_KEEP"} <= listed


@pytest.mark.parametrize(
    "path",
    [
        "docker-compose.yml",
        "docker-compose.override.yml",
        "docker-production.yml",
        "compose/production.env.example",
    ],
)
def test_committed_file_holds_no_secret_value(path: str) -> None:
    text = (REPO / path).read_text()
    assignments = re.findall(
        r"^[ \t]*(?:-[ \t]*)?(TWITTER_SERVICE_TOKEN|[A-Z_]*_DB_PASSWORD|POSTGRES_PASSWORD)[ \t]*[=:][ \t]*(\S*)",
        text,
        re.MULTILINE,
    )

    assert [
        (name, value) for name, value in assignments if value not in ("", '""')
    ] == []


def test_development_configuration_holds_no_secret(development: dict[str, Any]) -> None:
    environments = {
        name: service.get("environment") or {}
        for name, service in development["services"].items()
    }

    assert [
        name
        for name, environment in environments.items()
        if "TWITTER_SERVICE_TOKEN" in environment
    ] == []
    assert [
        name
        for name, environment in environments.items()
        if "POSTGRES_PASSWORD" in environment
    ] == []
    assert all(
        ":@" not in url and "@" in url
        for env in environments.values()
        for key, url in env.items()
        if key.endswith("DATABASE_URL")
    )
