"""Fan-out with real processes: a timeline service outage loses nothing, and removals propagate.

The timeline service is frozen (SIGSTOP) while statuses are posted and follows
made, then killed and restarted by the runner; its replacement must catch up
from the outboxes. Propagation times of a delete, an unfollow and an account
deletion are measured and reported in the test summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from mastodon import Mastodon

from tests.support.system import RunningSystem, running_system, wait_until_ready

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
TIMEOUT_SECONDS = 30


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with running_system(tmp_path_factory.mktemp("fanout"), TWITTER_RATE_LIMIT_ENABLED="false") as running:
        yield running


def user(system: RunningSystem, name: str) -> tuple[Mastodon, str]:
    client_id, client_secret = Mastodon.create_app("fan-out tests", api_base_url=system.base_url)
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=system.base_url)
    client.create_account(name, PASSWORD, f"{name}@example.org", agreement=True)
    return client, client.account_verify_credentials().id


def home_ids(client: Mastodon) -> list[str]:
    return [status.id for status in client.fetch_remaining(client.timeline_home(limit=40))]


def seconds_until(condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT_SECONDS:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not propagated within {TIMEOUT_SECONDS} s")


def test_timeline_outage_loses_nothing(system: RunningSystem) -> None:
    suffix = uuid.uuid4().hex[:6]
    author, author_id = user(system, f"author_{suffix}")
    early, _ = user(system, f"early_{suffix}")
    late, _ = user(system, f"late_{suffix}")
    early.account_follow(author_id)
    timeline_pid = system.service_pid("timeline")

    os.kill(timeline_pid, signal.SIGSTOP)
    try:
        posted = [author.status_post(f"during the outage {number}").id for number in range(15)]
        late.account_follow(author_id)
    finally:
        # Killed while frozen: the runner starts a fresh process, which must catch up from the outboxes.
        os.kill(timeline_pid, signal.SIGKILL)
    wait_until_ready(system.base_url + "/readyz")
    seconds_until(lambda: system.service_pid("timeline") != timeline_pid)

    seconds_until(lambda: set(posted) <= set(home_ids(early)) and set(posted) <= set(home_ids(late)))
    for follower in (early, late):
        ids = home_ids(follower)
        assert len(ids) == len(set(ids))
        assert [status_id for status_id in ids if status_id in posted] == list(reversed(posted))


def test_removals_propagate_and_are_timed(system: RunningSystem, record_property: Callable) -> None:
    suffix = uuid.uuid4().hex[:6]
    author, author_id = user(system, f"writer_{suffix}")
    reader, _ = user(system, f"reader_{suffix}")
    reader.account_follow(author_id)
    first = author.status_post("to be deleted").id
    second = author.status_post("to be unfollowed").id
    seconds_until(lambda: {first, second} <= set(home_ids(reader)))

    author.status_delete(first)
    delete_seconds = seconds_until(lambda: first not in home_ids(reader))
    reader.account_unfollow(author_id)
    unfollow_seconds = seconds_until(lambda: second not in home_ids(reader))

    doomed, doomed_id = user(system, f"doomed_{suffix}")
    reader.account_follow(doomed_id)
    doomed_status = doomed.status_post("gone with my account").id
    seconds_until(lambda: doomed_status in home_ids(reader))
    deleted = subprocess.run(
        [sys.executable, "-m", "twitter_tools.cli", "delete-account", doomed_id],
        env=system.env,
        cwd=system.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Timed from the deletion's acknowledgement, as the delete and the unfollow are.
    account_seconds = seconds_until(lambda: doomed_status not in home_ids(reader))

    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    for name, value in (("delete", delete_seconds), ("unfollow", unfollow_seconds), ("account_deletion", account_seconds)):
        record_property(f"propagation_{name}_seconds", round(value, 3))
