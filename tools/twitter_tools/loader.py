"""``twitter-system load``: the bundled real dataset, loaded through the public API.

One account per graph node, a follow in both directions for every friendship,
then every tweet posted by its author's account, oldest first (see ``_dataset``
for the mapping and the text rules). Requests run concurrently, at most
``--concurrency`` at a time.

A second run adds nothing, however long after the first:

- accounts: a username that exists already (found by ``accounts/lookup``, or a
  registration rejected with 422 ``ERR_TAKEN``) is logged in to with the
  deterministic password instead of registered;
- follows: an account whose ``following_count`` already equals its number of
  friends is skipped; otherwise its following list is read and only the missing
  follows are sent (a repeated follow is rejected with 422 "already following",
  which counts as done);
- tweets: each account's statuses are read first, and a tweet whose text is
  already among them (compared as plain text, whitespace collapsed, counted as
  a multiset so that repeated texts work) is not posted again. Posts carry an
  ``Idempotency-Key`` too, so a retry after a lost answer returns the first
  status (the server keeps keys for an hour), and each account's tweets are
  posted one after another, so an interrupted run leaves no gaps to guess about.

The system must run without rate limits (``TWITTER_RATE_LIMIT_ENABLED=false``):
962 registrations from one address and about 53,000 requests are far beyond
Mastodon's default limits. The loader stops at the first 429 and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from twitter_shared.logs import configure_logging
from twitter_shared.settings import Settings
from twitter_tools._dataset import (
    DEFAULT_MAX_CHARACTERS,
    DEFAULT_PASSWORD_SEED,
    Dataset,
    DatasetError,
    Tweet,
    default_data_dir,
    read_dataset,
)
from twitter_tools._dataset_accounts import DatasetAccount, resolve_accounts
from twitter_tools._public_client import ClientError, Progress, PublicClient, TokenFile, Unreachable, client_session

log = structlog.get_logger()

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_CONCURRENCY = 32
FOLLOWING_PAGE = 80
STATUSES_PAGE = 40
TAGS = re.compile(r"<[^>]+>")
LINE_BREAKS = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")
SERVER_REJECTED = "rejected by the server"


@dataclass
class LoadOptions:
    base_url: str = DEFAULT_URL
    data_dir: Path | None = None
    tweets_path: Path | None = None
    node_limit: int | None = None
    max_tweets: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    password_seed: str = DEFAULT_PASSWORD_SEED
    tokens_path: Path | None = None


@dataclass
class LoadSummary:
    accounts_created: int = 0
    accounts_existing: int = 0
    follows_created: int = 0
    follows_existing: int = 0
    tweets_posted: int = 0
    tweets_existing: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    graph_lines_skipped: int = 0
    requests: int = 0
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    accounts: dict[int, DatasetAccount] = field(default_factory=dict)

    @property
    def added(self) -> int:
        return self.accounts_created + self.follows_created + self.tweets_posted

    def lines(self) -> list[str]:
        rate = self.requests / self.seconds if self.seconds else 0.0
        lines = [
            f"accounts: {self.accounts_created} created, {self.accounts_existing} already there",
            f"follows:  {self.follows_created} created, {self.follows_existing} already there",
            f"tweets:   {self.tweets_posted} posted, {self.tweets_existing} already there, {sum(self.skipped.values())} skipped",
        ]
        lines += [f"  skipped, {reason}: {count}" for reason, count in sorted(self.skipped.items())]
        if self.graph_lines_skipped:
            lines.append(f"graph lines skipped (not a pair of distinct node ids): {self.graph_lines_skipped}")
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phase_seconds.items())
        lines.append(f"time:     {self.seconds:.1f} s ({phases}), {self.requests} requests, {rate:.0f} requests/s")
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"base URL of the system's public API (default {DEFAULT_URL})")
    parser.add_argument("--data-dir", type=Path, help="folder with socfb-Reed98.edges and airline-tweets.csv (default: the bundled copy)")
    parser.add_argument("--tweets", type=Path, help="CSV of tweets to load instead of the bundled airline-tweets.csv")
    parser.add_argument("--nodes", type=int, help="load only graph nodes 0 to N-1 and the friendships among them")
    parser.add_argument("--max-tweets", type=int, help="post at most this many tweets, the oldest first")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight at once (default 32)")
    parser.add_argument("--password-seed", default=DEFAULT_PASSWORD_SEED, help="seed of the accounts' deterministic passwords")
    parser.add_argument(
        "--tokens-file", type=Path, help="where the accounts' tokens are kept between runs (default: dataset-tokens.json in TWITTER_DATA_DIR)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="load", log_format=settings.log_format, level=settings.log_level)
    options = LoadOptions(
        base_url=args.url,
        data_dir=args.data_dir,
        tweets_path=args.tweets,
        node_limit=args.nodes,
        max_tweets=args.max_tweets,
        concurrency=args.concurrency,
        password_seed=args.password_seed,
        tokens_path=args.tokens_file or settings.data_dir / "dataset-tokens.json",
    )
    try:
        summary = asyncio.run(load(options))
    except DatasetError as error:
        log.error("load.dataset_invalid", error=str(error))
        return 2
    except Unreachable as error:
        log.error(
            "load.unreachable",
            error=str(error),
            action="start the system first (`TWITTER_RATE_LIMIT_ENABLED=false make run`) or pass --url; then run the loader again",
        )
        return 1
    except ClientError as error:
        log.error("load.stopped", error=str(error), action="fix the cause, then run the loader again: it resumes")
        return 1
    print("\n".join(summary.lines()))
    return 0


async def load(options: LoadOptions) -> LoadSummary:
    """Load the dataset into the system at ``options.base_url``; return what was added and skipped."""
    started = time.monotonic()
    async with client_session(concurrency=options.concurrency) as session:
        client = PublicClient(session, options.base_url, concurrency=options.concurrency)
        max_characters = await _max_characters(client)
        dataset = read_dataset(
            options.data_dir or default_data_dir(),
            node_limit=options.node_limit,
            max_tweets=options.max_tweets,
            max_characters=max_characters,
            tweets_path=options.tweets_path,
        )
        summary = LoadSummary(skipped=Counter({str(reason): count for reason, count in dataset.skipped.items()}))
        summary.graph_lines_skipped = dataset.graph_lines_skipped
        log.info(
            "load.started",
            url=options.base_url,
            accounts=len(dataset.nodes),
            follows=dataset.follow_count(),
            tweets=len(dataset.tweets),
            skipped_before_posting=sum(dataset.skipped.values()),
        )

        phase_started = time.monotonic()
        app = await client.register_app("twitter-system loader")
        tokens = TokenFile(options.tokens_path, options.base_url)
        accounts = await resolve_accounts(
            client, app, dataset.nodes, seed=options.password_seed, tokens=tokens, register=True, progress_event="load.progress"
        )
        summary.accounts = accounts
        summary.accounts_created = sum(account.created for account in accounts.values())
        summary.accounts_existing = len(accounts) - summary.accounts_created
        summary.phase_seconds["accounts"] = time.monotonic() - phase_started

        phase_started = time.monotonic()
        await _load_follows(client, dataset, accounts, summary)
        summary.phase_seconds["follows"] = time.monotonic() - phase_started

        phase_started = time.monotonic()
        await _load_tweets(client, dataset, accounts, summary)
        summary.phase_seconds["tweets"] = time.monotonic() - phase_started

        summary.requests = client.requests_sent
    summary.seconds = time.monotonic() - started
    log.info(
        "load.finished",
        accounts_created=summary.accounts_created,
        follows_created=summary.follows_created,
        tweets_posted=summary.tweets_posted,
        skipped=dict(summary.skipped),
        seconds=round(summary.seconds, 1),
    )
    return summary


async def _max_characters(client: PublicClient) -> int:
    instance = await client.expect("GET", "/api/v1/instance")
    statuses = instance.get("configuration", {}).get("statuses", {})
    return int(statuses.get("max_characters", DEFAULT_MAX_CHARACTERS))


async def _load_follows(client: PublicClient, dataset: Dataset, accounts: dict[int, DatasetAccount], summary: LoadSummary) -> None:
    followees = dataset.followees()
    node_of_id = {account.id: node for node, account in accounts.items()}
    missing: list[tuple[int, int]] = []

    async def find_missing(node: int) -> None:
        account = accounts[node]
        wanted = followees[node]
        if account.following_count == len(wanted):
            # NOTE: a hand-made follow of an account outside the dataset would hide one missing follow here.
            summary.follows_existing += len(wanted)
            return
        present: set[int] = set()
        if account.following_count:
            listed = await client.paged(f"/api/v1/accounts/{account.id}/following", limit=FOLLOWING_PAGE)
            present = {node_of_id[item["id"]] for item in listed if item["id"] in node_of_id}
        summary.follows_existing += len(wanted & present)
        missing.extend((node, followee) for followee in sorted(wanted - present))

    await asyncio.gather(*(find_missing(node) for node in dataset.nodes))
    missing.sort()
    progress = Progress("load.progress", "follows", len(missing))

    async def follow(node: int, followee: int) -> None:
        answer = await client.call("POST", f"/api/v1/accounts/{accounts[followee].id}/follow", token=accounts[node].token)
        if answer.status == 200:
            summary.follows_created += 1
        elif answer.status == 422 and "already" in answer.error.lower():
            summary.follows_existing += 1
        else:
            raise ClientError(f"{accounts[node].username} could not follow {accounts[followee].username}: {answer.status} {answer.body!r}")
        progress.advance()

    await _bounded([follow(node, followee) for node, followee in missing], workers=client.concurrency)


async def _load_tweets(client: PublicClient, dataset: Dataset, accounts: dict[int, DatasetAccount], summary: LoadSummary) -> None:
    posted_texts: dict[int, Counter[str]] = {}

    async def read_posted(node: int) -> None:
        account = accounts[node]
        if account.statuses_count == 0:
            posted_texts[node] = Counter()
            return
        statuses = await client.paged(f"/api/v1/accounts/{account.id}/statuses", limit=STATUSES_PAGE)
        posted_texts[node] = Counter(plain_text(status["content"]) for status in statuses if not status.get("reblog"))

    await asyncio.gather(*(read_posted(node) for node in dataset.nodes))
    to_post: list[Tweet] = []
    for tweet in dataset.tweets:
        already = posted_texts[tweet.node]
        key = collapse_whitespace(tweet.text)
        if already[key] > 0:
            already[key] -= 1
            summary.tweets_existing += 1
        else:
            to_post.append(tweet)

    progress = Progress("load.progress", "tweets", len(to_post))
    # Each tweet waits for its author's previous one, so one account's statuses keep the file's order.
    previous: dict[int, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()
    jobs = []
    for tweet in to_post:
        done = loop.create_future()
        jobs.append(_post_after(client, tweet, accounts[tweet.node], previous.get(tweet.node), done, summary, progress))
        previous[tweet.node] = done
    # Workers that wait for an author's previous tweet hold no request slot, so run more of them.
    await _bounded(jobs, workers=2 * client.concurrency)


async def _post_after(
    client: PublicClient,
    tweet: Tweet,
    account: DatasetAccount,
    after: asyncio.Future[None] | None,
    done: asyncio.Future[None],
    summary: LoadSummary,
    progress: Progress,
) -> None:
    try:
        if after is not None:
            await asyncio.shield(after)
        answer = await client.call(
            "POST",
            "/api/v1/statuses",
            token=account.token,
            data={"status": tweet.text, "visibility": "public"},
            headers={"Idempotency-Key": tweet.idempotency_key},
        )
        if answer.status == 200:
            summary.tweets_posted += 1
        elif answer.status == 422:
            summary.skipped[f"{SERVER_REJECTED}: {answer.error}"] += 1
            log.warning("load.tweet_rejected", row=tweet.row, account=account.username, error=answer.error)
        else:
            raise ClientError(f"posting row {tweet.row} as {account.username} failed with {answer.status}: {answer.body!r}")
        progress.advance()
    finally:
        if not done.done():
            done.set_result(None)


async def _bounded(jobs: list, *, workers: int) -> None:
    """Run coroutines in list order, a bounded number at a time; the first failure cancels the rest."""
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await job

    tasks = [asyncio.create_task(worker()) for _ in range(max(workers, 1))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        while not queue.empty():
            queue.get_nowait().close()


def plain_text(content: str) -> str:
    """Return a status's HTML content as plain text with whitespace collapsed, for comparing with a tweet."""
    return collapse_whitespace(html.unescape(TAGS.sub("", LINE_BREAKS.sub(" ", content))))


def collapse_whitespace(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()
