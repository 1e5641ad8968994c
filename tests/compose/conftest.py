"""Markers and the shared engine of the Compose tests; `make test` leaves them out with `-m "not compose"`."""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator

import pytest

from tests.compose.stack import (
    CI_SCRIPTS,
    REPO,
    RUN_DIR,
    BuiltImages,
    install_tools,
    require_root_for,
    run,
)

# Written into the build context before the images are built; no image may contain it.
CANARY_ENV_FILE = REPO / "compose" / "production.env"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "compose: needs the Compose programs; the end-to-end tests start a private Docker engine as root",
    )


def _selected_with_marker(config: pytest.Config) -> bool:
    expression = config.option.markexpr or ""
    return "compose" in expression and "not compose" not in expression


@pytest.fixture(scope="session", autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    """Run these tests only when asked for by marker, because they install packages and start an engine."""
    if not _selected_with_marker(request.config):
        pytest.skip(
            "the Compose tests run only when selected with -m compose (make test-compose)"
        )


@pytest.fixture(scope="session")
def _engine_lock() -> Iterator[None]:
    """Hold a lock for the session, so two test runs on one machine never share the engine and port 8080."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "e2e.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(
                f"another Compose end-to-end run holds {RUN_DIR / 'e2e.lock'}; wait for it to finish"
            )
        yield


@pytest.fixture(scope="session")
def built_images(_engine_lock: None) -> Iterator[BuiltImages]:
    """Start the private engine and build every image offline; stop the engine after the session."""
    require_root_for("the Compose end-to-end tests")
    install_tools()
    canary = None
    try:
        run(["bash", str(CI_SCRIPTS / "engine.sh"), "start"], timeout=120)
        # A real production.env in this checkout stays untouched; the canary check then skips.
        if not CANARY_ENV_FILE.exists():
            canary = f"canary-{uuid.uuid4().hex}"
            CANARY_ENV_FILE.write_text(f"TWITTER_SERVICE_TOKEN={canary}\n")
        try:
            run(["bash", str(CI_SCRIPTS / "build-images.sh"), "all"], timeout=1500)
        finally:
            if canary is not None:
                CANARY_ENV_FILE.unlink()
        yield BuiltImages(canary=canary)
    finally:
        run(["bash", str(CI_SCRIPTS / "engine.sh"), "stop"], check=False, timeout=120)
