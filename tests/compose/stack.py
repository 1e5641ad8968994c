"""Drive the Compose files from tests: the compose programs, a private Docker engine, a project.

The shell scripts under compose/ci start the engine and build the images; this
module calls them and wraps `docker compose` for one project, so the tests read
as what they check rather than as command lines.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_SCRIPTS = REPO / "compose" / "ci"
CACHE = Path(os.environ.get("TWITTER_CI_CACHE", "/var/cache/twitter-system-ci"))
RUN_DIR = Path(os.environ.get("TWITTER_CI_RUN", "/run/twitter-system-ci"))

# What compose/ci/engine.sh sets up: our own socket, and a CLI config folder with
# the Compose v2 plugin in it.
ENGINE_ENVIRONMENT = {
    "DOCKER_HOST": f"unix://{RUN_DIR / 'docker.sock'}",
    "DOCKER_CONFIG": str(CACHE / "docker-config"),
}
COMPOSE_V1 = "/usr/bin/docker-compose"
DEVELOPMENT_FILES: tuple[
    str, ...
] = ()  # Compose reads docker-compose.yml and its override by default.
PRODUCTION_FILES = ("docker-compose.yml", "docker-production.yml")

# Variables that point the Compose files at the images compose/ci/build-images.sh builds.
OFFLINE_IMAGES = {
    "TWITTER_BASE_IMAGE": "twitter-system-base:bookworm",
    "TWITTER_POSTGRES_IMAGE": "twitter-system-postgres:15",
    "TWITTER_NGINX_IMAGE": "twitter-system-nginx:bookworm",
}
SECRET_VARIABLES = (
    "TWITTER_SERVICE_TOKEN",
    "ACCOUNT_DB_PASSWORD",
    "POST_DB_PASSWORD",
    "TIMELINE_DB_PASSWORD",
)


@dataclass(frozen=True)
class BuiltImages:
    """The private engine is running and holds every image; ``canary`` was in the build context."""

    canary: str | None


class ComposeCommandError(AssertionError):
    """A docker or compose command exited non-zero; the message carries its output."""


def require_root_for(purpose: str) -> None:
    """Skip on a developer's machine without root; fail where CI=true, which must run everything."""
    if os.geteuid() == 0:
        return
    message = f"{purpose} needs root (a private Docker engine, iptables, debootstrap)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def install_tools() -> None:
    """Install the engine and both Compose programs (compose/ci/install-tools.sh; quick when done before)."""
    run(["bash", str(CI_SCRIPTS / "install-tools.sh")], timeout=600)


def missing_programs() -> list[str]:
    plugin = (
        Path(ENGINE_ENVIRONMENT["DOCKER_CONFIG"]) / "cli-plugins" / "docker-compose"
    )
    missing = [str(path) for path in (plugin, Path(COMPOSE_V1)) if not path.exists()]
    if shutil.which("docker") is None:
        missing.append("docker (the CLI)")
    return missing


def require_programs(*, purpose: str) -> None:
    """Install both Compose programs as root; elsewhere skip (fail where CI=true) without them."""
    if missing_programs() and os.geteuid() == 0:
        install_tools()
    missing = missing_programs()
    if not missing:
        return
    message = (
        f"{purpose} needs {', '.join(missing)}: run compose/ci/install-tools.sh as root"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run(
    command: Sequence[str],
    *,
    environment: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 900,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        list(command),
        cwd=REPO,
        env={**os.environ, **ENGINE_ENVIRONMENT, **(environment or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )
    if check and completed.returncode != 0:
        raise ComposeCommandError(
            f"{' '.join(command)} exited with {completed.returncode}\n"
            f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
        )
    return completed


def compose_config(
    *,
    files: Sequence[str],
    environment: Mapping[str, str] | None = None,
    version: int = 2,
) -> subprocess.CompletedProcess[str]:
    """Run `config` of Compose v2 (the docker plugin) or v1 (Debian's docker-compose 1.29)."""
    file_arguments = [argument for name in files for argument in ("-f", name)]
    if version == 2:
        command = ["docker", "compose", *file_arguments, "config", "--format", "json"]
    else:
        command = [COMPOSE_V1, *file_arguments, "config"]
    return run(command, environment=environment, check=False, timeout=60)


def merged_config(
    *, files: Sequence[str], environment: Mapping[str, str] | None = None
) -> dict[str, Any]:
    completed = compose_config(files=files, environment=environment)
    if completed.returncode != 0:
        raise ComposeCommandError(f"docker compose config failed:\n{completed.stderr}")
    return json.loads(completed.stdout)


def write_env_file(path: Path, *, extra: Mapping[str, str]) -> dict[str, str]:
    """Write a production env file from the committed example with fresh random secrets.

    Returns the secrets, so tests can look for them where they must not be.
    """
    generated = {name: secrets.token_hex(24) for name in SECRET_VARIABLES}
    lines = []
    for line in (REPO / "compose" / "production.env.example").read_text().splitlines():
        name = line.partition("=")[0]
        if name in generated:
            line = f"{name}={generated[name]}"
        elif name in extra:
            continue
        lines.append(line)
    lines.extend(f"{name}={value}" for name, value in extra.items())
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return generated


@dataclass
class ComposeProject:
    """One Compose project on the private engine: `docker compose -p NAME -f ... <command>`."""

    name: str
    files: Sequence[str]
    environment: dict[str, str] = field(default_factory=dict)

    def compose(
        self, *arguments: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        file_arguments = [argument for name in self.files for argument in ("-f", name)]
        return run(
            ["docker", "compose", "-p", self.name, *file_arguments, *arguments],
            environment=self.environment,
            check=check,
            timeout=timeout,
        )

    def save_logs(self) -> None:
        """Keep the containers' logs for reading after a failed run; the path goes to the test output."""
        try:
            logs = self.compose(
                "logs", "--no-color", "--timestamps", check=False, timeout=120
            )
        except (OSError, subprocess.SubprocessError):
            return
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        path = RUN_DIR / f"{self.name}.log"
        path.write_text(logs.stdout + logs.stderr)
        print(f"container logs: {path}")

    def container_ids(self, service: str) -> list[str]:
        output = self.compose("ps", "--quiet", service).stdout
        return [line for line in output.split() if line]

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(run(["docker", "inspect", container]).stdout)[0]

    def running_containers(self) -> list[dict[str, Any]]:
        output = self.compose("ps", "--quiet").stdout
        return [self.inspect(container) for container in output.split()]

    def run_once(
        self, service: str, *command: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose run --rm` a command in a fresh container of ``service``."""
        return self.compose(
            "run", "--rm", "--no-deps", service, *command, check=check, timeout=timeout
        )

    def wait_healthy(self, services: Sequence[str], *, timeout: float = 180) -> None:
        wait_for(
            lambda: all(
                self.inspect(container)["State"].get("Health", {}).get("Status")
                == "healthy"
                for service in services
                for container in self.container_ids(service) or ["missing"]
                if container != "missing"
            )
            and all(self.container_ids(service) for service in services),
            timeout=timeout,
            description=f"{', '.join(services)} healthy",
        )


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    description: str,
    interval: float = 1.0,
) -> None:
    """Poll ``condition`` until it holds; fail naming ``description`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {description}"
            )
        time.sleep(interval)
