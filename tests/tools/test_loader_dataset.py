"""The dataset as the loader plans it: the bundled files, the account mapping and the text rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from twitter_tools._dataset import (
    GRAPH_NODE_COUNT,
    DatasetError,
    SkipReason,
    credentials,
    default_data_dir,
    prepare_text,
    read_dataset,
    read_tweets,
)


def test_bundled_dataset_loads_whole() -> None:
    dataset = read_dataset(default_data_dir())

    assert len(dataset.nodes) == 962
    assert len(dataset.friendships) == 18_812
    assert dataset.follow_count() == 37_624
    assert len(dataset.tweets) == 14_640
    assert dict(dataset.skipped) == {}
    assert dataset.graph_lines_skipped == 0


def test_bundled_tweets_are_oldest_first() -> None:
    tweets = read_dataset(default_data_dir()).tweets

    assert all(a.created_at <= b.created_at for a, b in zip(tweets, tweets[1:]))


def test_most_followed_node_has_313_friends() -> None:
    followees = read_dataset(default_data_dir()).followees()

    assert max(len(friends) for friends in followees.values()) == 313
    assert len(followees[678]) == 313


def test_authors_map_onto_nodes_modulo_the_graph_size() -> None:
    tweets = read_dataset(default_data_dir()).tweets

    assert all(tweet.node == tweet.author % GRAPH_NODE_COUNT for tweet in tweets)


def test_credentials_are_deterministic_per_node_and_seed() -> None:
    assert credentials(5) == credentials(5)
    assert credentials(5).username == "reed_5"
    assert credentials(5).password != credentials(6).password
    assert credentials(5, seed="other").password != credentials(5).password
    assert len(credentials(5).password) >= 8


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fish &amp; chips", "fish & chips"),
        ("&lt;3 &gt; you", "<3 > you"),
        ("&amp;amp; stays once-unescaped", "&amp; stays once-unescaped"),
        ("two\nlines", "two\nlines"),
        ("   ", SkipReason.EMPTY_TEXT),
        ("&#32;", SkipReason.EMPTY_TEXT),
        ("y" * 501, SkipReason.OVER_LIMIT),
        ("https://t.co/" + "a" * 600, "https://t.co/" + "a" * 600),
    ],
)
def test_prepare_text(raw: str, expected: str | SkipReason) -> None:
    assert prepare_text(raw, max_characters=500) == expected


def test_text_at_the_limit_after_unescaping_is_kept() -> None:
    assert prepare_text("&amp;" * 500, max_characters=500) == "&" * 500


def test_read_tweets_counts_each_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text(
        "author,created_at,text\n"
        "1,2015-02-17T10:00:00Z,kept\n"
        "\n"
        "2,2015-02-17T10:00:00Z,\n"
        "x,2015-02-17T10:00:00Z,hi\n"
        "-3,2015-02-17T10:00:00Z,hi\n"
        "4,2015-02-17T10:00:00,no time zone\n"
        "5,2015-02-17T10:00:00Z,a,b\n"
        f"{GRAPH_NODE_COUNT + 1},2015-02-17T10:00:00Z,node 1 is not selected\n"
    )

    tweets, skipped = read_tweets(path, nodes={0, 2})

    assert [tweet.text for tweet in tweets] == []
    assert skipped == {
        SkipReason.NO_ACCOUNT: 2,
        SkipReason.EMPTY_TEXT: 2,
        SkipReason.MALFORMED_ROW: 4,
    }


def test_read_tweets_orders_by_time_then_row(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text(
        "author,created_at,text\n"
        "1,2015-02-17T10:05:00Z,third\n"
        "1,2015-02-17T10:00:00Z,first\n"
        "1,2015-02-17T10:00:00Z,second\n"
    )

    tweets, _ = read_tweets(path, nodes={1}, max_tweets=2)

    assert [tweet.text for tweet in tweets] == ["first", "second"]
    assert [tweet.row for tweet in tweets] == [2, 3]


def test_idempotency_keys_differ_by_row_and_text(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text("author,created_at,text\n1,2015-02-17T10:00:00Z,same\n1,2015-02-17T10:00:00Z,same\n")

    tweets, _ = read_tweets(path, nodes={1})

    assert tweets[0].idempotency_key != tweets[1].idempotency_key
    assert tweets[0].idempotency_key.startswith("tweet-1-")


def test_read_tweets_rejects_missing_header(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text("1,2015-02-17T10:00:00Z,no header\n")

    with pytest.raises(DatasetError, match="header"):
        read_tweets(path, nodes={1})
