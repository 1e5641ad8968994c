"""The real Mastodon.py client against the whole system running as processes (embedded mode)."""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mastodon import Mastodon, MastodonAPIError, MastodonNotFoundError

from tests.support.system import RunningSystem, running_system

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
PROPAGATION_TIMEOUT_SECONDS = 15


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    # The default limits stay on, except registrations: this module registers more than the
    # five accounts per address that Mastodon allows in 30 minutes.
    with running_system(tmp_path_factory.mktemp("mastodon"), TWITTER_REGISTRATION_LIMIT="50") as running:
        yield running


def new_user(system: RunningSystem, username: str) -> tuple[Mastodon, str, str]:
    client_id, client_secret = Mastodon.create_app("e2e tests", api_base_url=system.base_url)
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=system.base_url)
    email = f"{username}@example.org"
    client.create_account(username, PASSWORD, email, agreement=True, locale="en")
    return client, client_id, client_secret


def wait_for(condition: Callable[[], bool], *, timeout: float = PROPAGATION_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_account_flow_with_mastodon_py(system: RunningSystem) -> None:
    suffix = uuid.uuid4().hex[:6]
    alice, client_id, client_secret = new_user(system, f"alice_{suffix}")
    bob, _, _ = new_user(system, f"bob_{suffix}")

    # A fresh client logs in with the password grant, the e-mail in the username field as Mastodon does.
    alice_again = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=system.base_url)
    alice_again.log_in(username=f"alice_{suffix}@example.org", password=PASSWORD, allow_http=True)
    me = alice_again.account_verify_credentials()
    bob_account = alice.account_lookup(f"bob_{suffix}")
    relationship = alice.account_follow(bob_account.id)
    relationships = alice.account_relationships([bob_account.id])
    followers = bob.account_followers(bob_account.id)
    unfollowed = alice.account_unfollow(bob_account.id)

    assert me.username == f"alice_{suffix}"
    assert bob_account.username == f"bob_{suffix}"
    assert relationship.following is True
    assert relationships[0].following is True
    assert [account.id for account in followers] == [me.id]
    assert unfollowed.following is False
    assert bob.account_followers(bob_account.id) == []


def test_status_flow_with_mastodon_py(system: RunningSystem) -> None:
    suffix = uuid.uuid4().hex[:6]
    carol, _, _ = new_user(system, f"carol_{suffix}")
    dave, _, _ = new_user(system, f"dave_{suffix}")
    carol_id = carol.account_verify_credentials().id
    dave.account_follow(carol_id)

    first = carol.status_post("Hello from Mastodon.py", idempotency_key=f"key-{suffix}")
    repeat = carol.status_post("Hello from Mastodon.py", idempotency_key=f"key-{suffix}")
    fetched = dave.status(first.id)
    reply = dave.status_reply(first, f"@carol_{suffix} welcome!")
    context = carol.status_context(first.id)
    favourited = dave.status_favourite(first.id)
    unfavourited = dave.status_unfavourite(first.id)
    reblog = dave.status_reblog(first.id)
    carol_statuses = dave.account_statuses(carol_id)

    assert repeat.id == first.id
    assert fetched.content == "<p>Hello from Mastodon.py</p>"
    assert fetched.mentions == []
    assert [m.username for m in reply.mentions] == [f"carol_{suffix}"]
    assert [s.id for s in context.descendants] == [reply.id]
    assert favourited.favourited is True
    assert favourited.favourites_count == 1
    assert unfavourited.favourited is False
    assert reblog.reblog.id == first.id
    assert [s.id for s in carol_statuses] == [first.id]

    # Home timelines are fed asynchronously from the post outbox.
    wait_for(lambda: any(s.id == first.id for s in dave.timeline_home()))
    for number in range(30):
        carol.status_post(f"status number {number}")
    wait_for(lambda: len(dave.timeline_home(limit=40)) == 33)

    first_page = dave.timeline_home(limit=10)
    second_page = dave.fetch_next(first_page)
    back = dave.fetch_previous(second_page)
    everything = dave.fetch_remaining(first_page)

    assert len(first_page) == 10
    assert [s.id for s in back] == [s.id for s in first_page]
    assert len(everything) == 33
    ids = [int(s.id) for s in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)

    carol.status_delete(first.id)
    with pytest.raises(MastodonNotFoundError):
        dave.status(first.id)
    wait_for(lambda: all(s.id != first.id and (s.reblog is None or s.reblog.id != first.id) for s in dave.fetch_remaining(dave.timeline_home())))


def test_client_sees_validation_errors(system: RunningSystem) -> None:
    suffix = uuid.uuid4().hex[:6]
    erin, _, _ = new_user(system, f"erin_{suffix}")

    with pytest.raises(MastodonAPIError):
        erin.status_post("x" * 501)
    with pytest.raises(MastodonAPIError):
        erin.account_follow(erin.account_verify_credentials().id)


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with running_system(tmp_path) as first_run:
        client, _, _ = new_user(first_run, "kept_user")
        posted = client.status_post("still here after a restart")

    with running_system(tmp_path) as second_run:
        anonymous = Mastodon(api_base_url=second_run.base_url)
        account = anonymous.account_lookup("kept_user")
        status = anonymous.status(posted.id)

    assert account.statuses_count == 1
    assert status.content == "<p>still here after a restart</p>"


def test_authorization_code_login_with_mastodon_py(system: RunningSystem) -> None:
    suffix = uuid.uuid4().hex[:6]
    new_user(system, f"frank_{suffix}")
    client_id, client_secret = Mastodon.create_app("web login", api_base_url=system.base_url, scopes=["read"])
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=system.base_url)

    url = client.auth_request_url(scopes=["read"], state="s1")
    # The user signs in on the page the client opened; the test posts the same form.
    form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    form.update(username=f"frank_{suffix}@example.org", password=PASSWORD)
    request = urllib.request.Request(system.base_url + "/oauth/authorize", data=urllib.parse.urlencode(form).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    code = re.search(r"<code>([^<]+)</code>", page).group(1)
    client.log_in(code=code, scopes=["read"], allow_http=True)

    assert client.account_verify_credentials().username == f"frank_{suffix}"
