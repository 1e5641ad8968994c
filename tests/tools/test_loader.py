"""The dataset loader and the checker against the whole system running as real processes.

One system serves the module: a slice of the real dataset (nodes 0-39, the
friendships among them, the 300 oldest tweets of their authors) is loaded once,
then checked, loaded again, and fed hand-made bad rows.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import PublicApi
from tests.support.system import RunningSystem, running_system
from twitter_tools._dataset import SkipReason, credentials, default_data_dir, read_dataset
from twitter_tools._public_client import ClientError
from twitter_tools.checker import CheckOptions, check
from twitter_tools.loader import LoadOptions, LoadSummary, load

pytestmark = pytest.mark.slow

SLICE_NODES = 40
SLICE_TWEETS = 300


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with running_system(tmp_path_factory.mktemp("system"), TWITTER_RATE_LIMIT_ENABLED="false") as running:
        yield running


@pytest.fixture(scope="module")
def slice_options(system: RunningSystem, tmp_path_factory: pytest.TempPathFactory) -> LoadOptions:
    return LoadOptions(
        base_url=system.base_url,
        node_limit=SLICE_NODES,
        max_tweets=SLICE_TWEETS,
        tokens_path=tmp_path_factory.mktemp("tokens") / "tokens.json",
    )


@pytest.fixture(scope="module")
def first_load(slice_options: LoadOptions) -> LoadSummary:
    return asyncio.run(load(slice_options))


def check_options(load_options: LoadOptions, **changes: object) -> CheckOptions:
    options = CheckOptions(
        base_url=load_options.base_url,
        node_limit=load_options.node_limit,
        tokens_path=load_options.tokens_path,
        settle_seconds=30,
    )
    for name, value in changes.items():
        setattr(options, name, value)
    return options


def test_first_load_adds_every_account_follow_and_tweet(first_load: LoadSummary) -> None:
    dataset = read_dataset(default_data_dir(), node_limit=SLICE_NODES, max_tweets=SLICE_TWEETS)

    assert first_load.accounts_created == SLICE_NODES
    assert first_load.follows_created == dataset.follow_count()
    assert first_load.follows_created > 0
    assert first_load.tweets_posted == SLICE_TWEETS
    assert first_load.skipped[str(SkipReason.NO_ACCOUNT)] > 0
    assert sum(first_load.skipped.values()) + SLICE_TWEETS == 14_640


def test_checker_finds_every_home_timeline_right(first_load: LoadSummary, slice_options: LoadOptions) -> None:
    report = asyncio.run(check(check_options(slice_options)))

    assert report.checked == SLICE_NODES
    assert report.mismatches == []


def test_second_load_adds_nothing(first_load: LoadSummary, slice_options: LoadOptions) -> None:
    second = asyncio.run(load(slice_options))

    assert second.added == 0
    assert second.accounts_existing == SLICE_NODES
    assert second.follows_existing == first_load.follows_created
    assert second.tweets_existing == SLICE_TWEETS


def test_reload_without_tokens_adds_nothing(first_load: LoadSummary, slice_options: LoadOptions, tmp_path: Path) -> None:
    # No tokens and, as after the server's one-hour idempotency window, no help from keys: a new system
    # process would have forgotten nothing else, so only the statuses already posted can prevent repeats.
    options = LoadOptions(**{**vars(slice_options), "tokens_path": tmp_path / "fresh-tokens.json"})

    second = asyncio.run(load(options))

    assert second.added == 0
    assert second.tweets_existing == SLICE_TWEETS


def test_bad_rows_are_skipped_with_their_reasons(first_load: LoadSummary, slice_options: LoadOptions, tmp_path: Path) -> None:
    node_in_slice = 7
    node_outside = 500
    tweets = tmp_path / "bad.csv"
    tweets.write_text(
        "author,created_at,text\n"
        f'{node_in_slice},2015-02-17T10:00:00Z,"{"x" * 501}"\n'
        f"{node_in_slice},2015-02-17T10:01:00Z,&amp;&amp; too long once unescaped? no: fine &amp; short\n"
        "\n"
        f"{node_in_slice},2015-02-17T10:02:00Z,\n"
        f"{node_in_slice},2015-02-17T10:03:00Z,   \n"
        "not-a-number,2015-02-17T10:04:00Z,hello\n"
        f"{node_in_slice},yesterday,hello\n"
        f"{node_in_slice},2015-02-17T10:05:00Z\n"
        f"{node_outside},2015-02-17T10:06:00Z,nobody posts this\n"
    )
    options = LoadOptions(**{**vars(slice_options), "tweets_path": tweets, "max_tweets": None})

    summary = asyncio.run(load(options))

    assert summary.tweets_posted == 1
    assert summary.skipped == {
        str(SkipReason.OVER_LIMIT): 1,
        str(SkipReason.EMPTY_TEXT): 3,
        str(SkipReason.MALFORMED_ROW): 3,
        str(SkipReason.NO_ACCOUNT): 1,
    }


def test_text_unescaped_once_keeps_lines(first_load: LoadSummary, slice_options: LoadOptions, system: RunningSystem, tmp_path: Path) -> None:
    tweets = tmp_path / "lines.csv"
    tweets.write_text('author,created_at,text\n3,2015-02-17T11:00:00Z,"first &amp;amp; &lt;line&gt;\nsecond line"\n')
    options = LoadOptions(**{**vars(slice_options), "tweets_path": tweets, "max_tweets": None})

    summary = asyncio.run(load(options))
    statuses = asyncio.run(_account_statuses(system.base_url, credentials(3).username))

    assert summary.tweets_posted == 1
    assert statuses[0]["content"] == "<p>first &amp;amp; &lt;line&gt;<br />second line</p>"


def test_checker_reports_a_status_from_outside_the_graph(first_load: LoadSummary, slice_options: LoadOptions, system: RunningSystem) -> None:
    node = 11
    status_id = asyncio.run(_follow_a_stranger_who_posts(system.base_url, credentials(node)))

    report = asyncio.run(check(check_options(slice_options, settle_seconds=5)))

    assert [mismatch.username for mismatch in report.mismatches] == [credentials(node).username]
    assert report.mismatches[0].unexpected == [status_id]
    assert report.mismatches[0].actual[0] == status_id


async def _account_statuses(base_url: str, username: str) -> list[dict]:
    async with aiohttp.ClientSession() as session:
        api = PublicApi(session, base_url)
        account = await api.call("GET", "/api/v1/accounts/lookup", params={"acct": username})
        answer = await api.call("GET", f"/api/v1/accounts/{account.body['id']}/statuses")
        return answer.body


async def _follow_a_stranger_who_posts(base_url: str, login) -> str:  # noqa: ANN001 - a dataset Credentials
    async with aiohttp.ClientSession() as session:
        api = PublicApi(session, base_url)
        stranger = await api.register_user("stranger")
        posted = await api.call("POST", "/api/v1/statuses", token=stranger.token, data={"status": "not in the dataset"})
        assert posted.status == 200, posted.body
        grant = await api.password_login(login.username, login.password)
        assert grant.status == 200, grant.body
        followed = await api.call("POST", f"/api/v1/accounts/{stranger.id}/follow", token=grant.body["access_token"])
        assert followed.status == 200, followed.body
        return posted.body["id"]


def test_checker_skips_deleted_account(first_load: LoadSummary, slice_options: LoadOptions, system: RunningSystem) -> None:
    """Must run after the other tests of the slice, because it deletes one of its accounts. The rest is still checked, and its followers expect none of its statuses."""
    deleted = credentials(5).username
    removal = subprocess.run(
        [sys.executable, "-m", "twitter_tools.cli", "delete-account", deleted],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert removal.returncode == 0, removal.stdout + removal.stderr

    report = asyncio.run(check(check_options(slice_options, settle_seconds=10)))

    assert report.not_found == [deleted]
    assert report.checked == SLICE_NODES - 1
    assert [mismatch.username for mismatch in report.mismatches] == [credentials(11).username]
    assert f"1 dataset accounts not found, so not checked (deleted, or not loaded yet: run `twitter-system load`): {deleted}" in report.lines()


def test_checker_without_dataset_asks_for_load(tmp_path: Path) -> None:
    with running_system(tmp_path, TWITTER_RATE_LIMIT_ENABLED="false") as empty:
        options = CheckOptions(base_url=empty.base_url, node_limit=3, tokens_path=tmp_path / "tokens.json", settle_seconds=0)
        with pytest.raises(ClientError) as stopped:
            asyncio.run(check(options))

    assert "load the dataset first" in str(stopped.value)
