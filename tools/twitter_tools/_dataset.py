"""The bundled dataset as the loader, the checker and the benchmarks see it.

Two files: a friendship graph (``socfb-Reed98.edges``, one ``a b`` pair of
0-based node ids per line) and tweets (``airline-tweets.csv``: author, created_at,
text). This module reads them, maps them onto accounts and decides what happens to
text the server would reject, so that every command agrees on the same plan:

- graph node N is the account ``reed_N``, with a password derived from N and a
  seed, so a second run logs in where the first one registered;
- tweet author A is posted by the account of node ``A mod 962`` (the full
  graph's node count, also when only a slice is loaded), so the mapping never
  depends on which nodes a run selects. An author whose node is outside the
  selected slice has no account and the tweet is skipped;
- tweet text is HTML-unescaped once, because the source API served ``&amp;``,
  ``&lt;`` and ``&gt;`` for what authors typed as ``&``, ``<`` and ``>``. Newlines
  are kept, since statuses may span several lines. Text that is blank after
  unescaping, or longer than the server's limit as the server counts it, is
  skipped with its reason.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import html
import importlib.resources
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from twitter_post.text import countable_length

EDGES_FILE = "socfb-Reed98.edges"
TWEETS_FILE = "airline-tweets.csv"
TWEET_COLUMNS = ("author", "created_at", "text")
# The full graph's node count: authors map onto nodes modulo this, whatever slice is loaded.
GRAPH_NODE_COUNT = 962
USERNAME_PREFIX = "reed_"
EMAIL_DOMAIN = "reed.example.org"
DEFAULT_PASSWORD_SEED = "twitter-system-dataset"
# Mastodon's default; the loader reads the real value from the instance document.
DEFAULT_MAX_CHARACTERS = 500


class DatasetError(Exception):
    """The dataset files are missing or unreadable."""


class SkipReason(enum.StrEnum):
    """The reason a tweet was not posted; the summary counts tweets per reason."""

    MALFORMED_ROW = "malformed row (wrong column count, author not an integer or time not ISO 8601)"
    EMPTY_TEXT = "empty text"
    OVER_LIMIT = "over the character limit after unescaping HTML entities"
    NO_ACCOUNT = "author maps to a node outside the loaded slice"
    BEYOND_MAX_TWEETS = "beyond --max-tweets"


@dataclass(frozen=True)
class Tweet:
    row: int  # 1-based record number in the CSV file, header excluded
    author: int
    created_at: datetime
    text: str  # unescaped, ready to post
    node: int

    @property
    def idempotency_key(self) -> str:
        # The text's hash keeps keys of different files (tests, hand-made CSVs) apart for the same row.
        digest = hashlib.sha256(self.text.encode()).hexdigest()[:16]
        return f"tweet-{self.row}-{digest}"


@dataclass
class Dataset:
    """The selected nodes, their friendships and the tweets to post, oldest first."""

    nodes: list[int]
    friendships: list[tuple[int, int]]
    tweets: list[Tweet]
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    graph_lines_skipped: int = 0

    def followees(self) -> dict[int, set[int]]:
        """Return, for each selected node, the nodes it follows: each friendship both ways."""
        following: dict[int, set[int]] = {node: set() for node in self.nodes}
        for a, b in self.friendships:
            following[a].add(b)
            following[b].add(a)
        return following

    def follow_count(self) -> int:
        return 2 * len(self.friendships)

    def tweets_by_node(self) -> dict[int, list[Tweet]]:
        grouped: dict[int, list[Tweet]] = {node: [] for node in self.nodes}
        for tweet in self.tweets:
            grouped[tweet.node].append(tweet)
        return grouped


@dataclass(frozen=True)
class Credentials:
    node: int
    username: str
    email: str
    password: str


def credentials(node: int, *, seed: str = DEFAULT_PASSWORD_SEED) -> Credentials:
    """Return the deterministic registration details of node ``node``'s account.

    The password is derived from the seed, so anyone who has the seed can log in
    as a dataset account: these are demo accounts. Pass another seed to the loader
    and the checker (``--password-seed``) on a system that others can reach.
    """
    username = f"{USERNAME_PREFIX}{node}"
    password = hashlib.sha256(f"{seed}:{node}".encode()).hexdigest()[:24]
    return Credentials(node=node, username=username, email=f"{username}@{EMAIL_DOMAIN}", password=password)


def default_data_dir() -> Path:
    """Return the folder holding the dataset: the installed ``twitter_dataset`` package, else ``data/`` in the repository."""
    try:
        packaged = Path(str(importlib.resources.files("twitter_dataset")))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and (packaged / EDGES_FILE).is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "data"


def read_friendships(path: Path) -> tuple[list[tuple[int, int]], int]:
    """Return the distinct friendships in an edge list, and how many lines were not valid pairs."""
    friendships: set[tuple[int, int]] = set()
    invalid = 0
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise DatasetError(f"cannot read the friendship graph {path}: {error}") from error
    for line in lines:
        if not line.strip() or line.lstrip().startswith(("%", "#")):
            continue
        parts = line.split()
        try:
            a, b = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            invalid += 1
            continue
        if a == b or a < 0 or b < 0:
            invalid += 1
            continue
        friendships.add((min(a, b), max(a, b)))
    return sorted(friendships), invalid


def prepare_text(raw: str, *, max_characters: int) -> str | SkipReason:
    """Return the text to post, or why the tweet is skipped."""
    text = html.unescape(raw)
    if not text.strip():
        return SkipReason.EMPTY_TEXT
    if countable_length(text) > max_characters:
        return SkipReason.OVER_LIMIT
    return text


def read_tweets(
    path: Path,
    *,
    nodes: set[int],
    max_characters: int = DEFAULT_MAX_CHARACTERS,
    max_tweets: int | None = None,
) -> tuple[list[Tweet], Counter[SkipReason]]:
    """Return the tweets to post, oldest first (file order among equal times), and the skip counts."""
    skipped: Counter[SkipReason] = Counter()
    candidates: list[Tweet] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read the tweets {path}: {error}") from error
    if not records or tuple(records[0]) != TWEET_COLUMNS:
        raise DatasetError(f"{path} must start with the header {','.join(TWEET_COLUMNS)}")

    for row, record in enumerate(records[1:], start=1):
        if not record:
            # csv yields an empty record for a blank line: nothing was written there.
            skipped[SkipReason.EMPTY_TEXT] += 1
            continue
        tweet = _parse_record(row, record, nodes=nodes, max_characters=max_characters)
        if isinstance(tweet, SkipReason):
            skipped[tweet] += 1
        else:
            candidates.append(tweet)

    candidates.sort(key=lambda tweet: (tweet.created_at, tweet.row))
    if max_tweets is not None and len(candidates) > max_tweets:
        skipped[SkipReason.BEYOND_MAX_TWEETS] += len(candidates) - max_tweets
        candidates = candidates[:max_tweets]
    return candidates, skipped


def _parse_record(row: int, record: list[str], *, nodes: set[int], max_characters: int) -> Tweet | SkipReason:
    if len(record) != len(TWEET_COLUMNS):
        return SkipReason.MALFORMED_ROW
    raw_author, raw_created_at, raw_text = record
    try:
        author = int(raw_author)
        created_at = datetime.fromisoformat(raw_created_at.replace("Z", "+00:00"))
    except ValueError:
        return SkipReason.MALFORMED_ROW
    if author < 0 or created_at.tzinfo is None:
        return SkipReason.MALFORMED_ROW
    text = prepare_text(raw_text, max_characters=max_characters)
    if isinstance(text, SkipReason):
        return text
    node = author % GRAPH_NODE_COUNT
    if node not in nodes:
        return SkipReason.NO_ACCOUNT
    return Tweet(row=row, author=author, created_at=created_at, text=text, node=node)


def select_nodes(*, node_limit: int | None) -> list[int]:
    """Return the nodes to load: all of them, or the first ``node_limit`` ids (their induced subgraph)."""
    count = GRAPH_NODE_COUNT if node_limit is None else min(node_limit, GRAPH_NODE_COUNT)
    return list(range(count))


def read_dataset(
    data_dir: Path,
    *,
    node_limit: int | None = None,
    max_tweets: int | None = None,
    max_characters: int = DEFAULT_MAX_CHARACTERS,
    tweets_path: Path | None = None,
) -> Dataset:
    """Read the graph and the tweets and keep what falls on the selected nodes."""
    dataset = read_graph(data_dir, node_limit=node_limit)
    dataset.tweets, dataset.skipped = read_tweets(
        tweets_path or data_dir / TWEETS_FILE, nodes=set(dataset.nodes), max_characters=max_characters, max_tweets=max_tweets
    )
    return dataset


def read_graph(data_dir: Path, *, node_limit: int | None = None) -> Dataset:
    """Read the selected nodes and the friendships among them, without tweets."""
    nodes = select_nodes(node_limit=node_limit)
    selected = set(nodes)
    all_friendships, invalid_lines = read_friendships(data_dir / EDGES_FILE)
    outside = sorted({n for pair in all_friendships for n in pair if n >= GRAPH_NODE_COUNT})
    if outside:
        raise DatasetError(f"the graph has node ids at or above {GRAPH_NODE_COUNT}, e.g. {outside[0]}: not the bundled graph")
    friendships = [(a, b) for a, b in all_friendships if a in selected and b in selected]
    return Dataset(nodes=nodes, friendships=friendships, tweets=[], graph_lines_skipped=invalid_lines)


def sample(items: Iterable[int], *, size: int | None, seed: int) -> list[int]:
    """Return ``size`` items chosen at random with a fixed seed (all of them when ``size`` is None)."""
    pool = sorted(items)
    if size is None or size >= len(pool):
        return pool
    return sorted(random.Random(seed).sample(pool, size))
