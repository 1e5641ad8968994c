"""``twitter-system check``: compare home timelines with what the dataset's follow graph implies.

For each checked account the expected home timeline is the newest 20 statuses
among its own and those of the accounts it follows in the dataset (each
friendship is a follow both ways). The statuses come from each account's own
list, ``GET /api/v1/accounts/:id/statuses``, never from the timeline service;
the actual timeline is ``GET /api/v1/timelines/home?limit=20`` with the
account's token. Ids are compared in order.

Fan-out is asynchronous, so a check right after a load may see timelines still
filling. Mismatches are read again, once a second, until they are gone, two
consecutive reads agree (the mismatch is stable, so it is real), or
``--settle-seconds`` pass.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from twitter_shared.logs import configure_logging
from twitter_shared.settings import Settings
from twitter_tools._dataset import DEFAULT_PASSWORD_SEED, DatasetError, credentials, default_data_dir, read_graph, sample
from twitter_tools._dataset_accounts import resolve_accounts
from twitter_tools._public_client import ClientError, PublicClient, TokenFile, UnexpectedAnswer, client_session

log = structlog.get_logger()

DEFAULT_URL = "http://127.0.0.1:8080"
HOME_SIZE = 20
DEFAULT_CONCURRENCY = 32
DEFAULT_SETTLE_SECONDS = 60.0
REREAD_PAUSE_SECONDS = 1.0


@dataclass
class CheckOptions:
    base_url: str = DEFAULT_URL
    data_dir: Path | None = None
    node_limit: int | None = None
    sample_size: int | None = None
    sample_seed: int = 1
    concurrency: int = DEFAULT_CONCURRENCY
    password_seed: str = DEFAULT_PASSWORD_SEED
    tokens_path: Path | None = None
    settle_seconds: float = DEFAULT_SETTLE_SECONDS


@dataclass(frozen=True)
class Mismatch:
    username: str
    account_id: str
    expected: tuple[str, ...]
    actual: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        return [status_id for status_id in self.expected if status_id not in self.actual]

    @property
    def unexpected(self) -> list[str]:
        return [status_id for status_id in self.actual if status_id not in self.expected]

    def describe(self) -> str:
        if not self.missing and not self.unexpected:
            return f"{self.username} (id {self.account_id}): the right statuses in the wrong order: {list(self.actual)}"
        return f"{self.username} (id {self.account_id}): missing {self.missing}, unexpected {self.unexpected}"


@dataclass
class CheckReport:
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0
    # Usernames of sampled dataset accounts that do not exist: deleted, or not loaded yet.
    not_found: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [mismatch.describe() for mismatch in self.mismatches]
        if self.not_found:
            lines.append(
                f"{len(self.not_found)} dataset accounts not found, so not checked (deleted, or not loaded yet:"
                f" run `twitter-system load`): {', '.join(self.not_found)}"
            )
        lines.append(
            f"checked {self.checked} home timelines: {len(self.mismatches)} mismatches "
            f"({self.rounds} reads, {self.seconds:.1f} s)"
        )
        return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"base URL of the system's public API (default {DEFAULT_URL})")
    parser.add_argument("--data-dir", type=Path, help="folder with socfb-Reed98.edges (default: the bundled copy)")
    parser.add_argument("--nodes", type=int, help="the loader's --nodes: only graph nodes 0 to N-1 were loaded")
    parser.add_argument("--sample", type=int, help="check this many accounts chosen at random (default: every account)")
    parser.add_argument("--sample-seed", type=int, default=1, help="seed of the random sample (default 1)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight at once (default 32)")
    parser.add_argument("--password-seed", default=DEFAULT_PASSWORD_SEED, help="the loader's --password-seed")
    parser.add_argument(
        "--tokens-file", type=Path, help="the loader's tokens file (default: dataset-tokens.json in TWITTER_DATA_DIR)"
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=DEFAULT_SETTLE_SECONDS,
        help="how long to wait for fan-out to finish before reporting mismatches (default 60)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="check", log_format=settings.log_format, level=settings.log_level)
    options = CheckOptions(
        base_url=args.url,
        data_dir=args.data_dir,
        node_limit=args.nodes,
        sample_size=args.sample,
        sample_seed=args.sample_seed,
        concurrency=args.concurrency,
        password_seed=args.password_seed,
        tokens_path=args.tokens_file or settings.data_dir / "dataset-tokens.json",
        settle_seconds=args.settle_seconds,
    )
    try:
        report = asyncio.run(check(options))
    except DatasetError as error:
        log.error("check.dataset_invalid", error=str(error))
        return 2
    except ClientError as error:
        log.error("check.failed", error=str(error))
        return 2
    print("\n".join(report.lines()))
    return 1 if report.mismatches else 0


async def check(options: CheckOptions) -> CheckReport:
    """Compare the checked accounts' home timelines with the expected ones; return the mismatches."""
    started = time.monotonic()
    dataset = read_graph(options.data_dir or default_data_dir(), node_limit=options.node_limit)
    followees = dataset.followees()
    checked_nodes = sample(dataset.nodes, size=options.sample_size, seed=options.sample_seed)
    read_nodes = sorted(set(checked_nodes).union(*(followees[node] for node in checked_nodes)))

    async with client_session(concurrency=options.concurrency) as session:
        client = PublicClient(session, options.base_url, concurrency=options.concurrency)
        app = await client.register_app("twitter-system checker")
        tokens = TokenFile(options.tokens_path, options.base_url)
        accounts = await resolve_accounts(
            client, app, checked_nodes, seed=options.password_seed, tokens=tokens, register=False, progress_event="check.progress"
        )
        if not accounts:
            raise ClientError("no account of the dataset was found: load the dataset first (`twitter-system load`)")
        report = CheckReport(
            checked=len(accounts),
            not_found=[credentials(node, seed=options.password_seed).username for node in checked_nodes if node not in accounts],
        )
        account_ids = {node: account.id for node, account in accounts.items()}
        others = [node for node in read_nodes if node not in account_ids]
        looked_up = await asyncio.gather(*(_look_up(client, node, options.password_seed) for node in others))
        account_ids.update((node, found) for node, found in zip(others, looked_up, strict=True) if found is not None)

        pending = [node for node in checked_nodes if node in accounts]
        previous: dict[int, Mismatch] = {}
        deadline = time.monotonic() + options.settle_seconds
        while True:
            report.rounds += 1
            needed = sorted(set(pending).union(*(followees[node] for node in pending)))
            # A followee whose account is gone has no statuses to expect.
            readable = [node for node in needed if node in account_ids]
            newest = {node: [] for node in needed}
            newest.update(zip(readable, await asyncio.gather(*(_newest_statuses(client, account_ids[n]) for n in readable)), strict=True))
            homes = await asyncio.gather(*(_home(client, accounts[node].token) for node in pending))
            current: dict[int, Mismatch] = {}
            for node, actual in zip(pending, homes, strict=True):
                expected = _expected_home(newest, node, followees[node])
                if tuple(actual) != expected:
                    current[node] = Mismatch(accounts[node].username, account_ids[node], expected, tuple(actual))
            stable = bool(current) and current == {node: previous.get(node) for node in current}
            if not current or stable or time.monotonic() >= deadline:
                break
            log.info("check.waiting_for_fan_out", mismatches=len(current), reread_in_seconds=REREAD_PAUSE_SECONDS)
            previous = current
            pending = sorted(current)
            await asyncio.sleep(REREAD_PAUSE_SECONDS)

    report.mismatches = [current[node] for node in sorted(current)]
    report.seconds = time.monotonic() - started
    log.info("check.finished", checked=report.checked, mismatches=len(report.mismatches), seconds=round(report.seconds, 1))
    return report


def _expected_home(newest: dict[int, list[str]], node: int, followees: set[int]) -> tuple[str, ...]:
    candidates = set(newest[node]).union(*(newest[followee] for followee in followees))
    return tuple(sorted(candidates, key=int, reverse=True)[:HOME_SIZE])


async def _newest_statuses(client: PublicClient, account_id: str) -> list[str]:
    statuses = await client.expect("GET", f"/api/v1/accounts/{account_id}/statuses", params={"limit": str(HOME_SIZE)})
    return [status["id"] for status in statuses]


async def _home(client: PublicClient, token: str) -> list[str]:
    statuses = await client.expect("GET", "/api/v1/timelines/home", token=token, params={"limit": str(HOME_SIZE)})
    return [status["id"] for status in statuses]


async def _look_up(client: PublicClient, node: int, seed: str) -> str | None:
    """Return the id of the node's account, or None when it does not exist."""
    username = credentials(node, seed=seed).username
    answer = await client.call("GET", "/api/v1/accounts/lookup", params={"acct": username})
    if answer.status == 404:
        return None
    if answer.status != 200:
        raise UnexpectedAnswer("GET", "/api/v1/accounts/lookup", answer)
    return answer.body["id"]
