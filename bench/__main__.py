"""``python -m bench``: the benchmark suite, one run, results in ``bench/RESULTS.md``.

It first measures the baseline, a bare aiohttp hello-world endpoint in one
process. Then, for the whole system in embedded mode with SQLite and again with
PostgreSQL, it measures the dataset load, the checker, home timeline reads,
status posts, a mixed workload (60% home reads, 30% account statuses reads, 10%
posts), fan-out delay to the most-followed account's followers, and the memory
of every service process. Each system is started afresh with rate limits off
(``TWITTER_RATE_LIMIT_ENABLED=false``). The load generator is wrk.

Run it from the repository root: ``.venv/bin/python -m bench`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench._backlog import wait_for_timelines
from bench._fanout import measure_fanout
from bench._report import BackendResult, Report, write_report
from bench._wrk import Measurement, WrkMissing, ensure_wrk, run_wrk
from tests.support.postgres import PostgresUnavailable, free_port, running_postgres
from tests.support.system import RunningSystem, running_system, wait_until_ready
from twitter_tools._dataset import default_data_dir, read_graph
from twitter_tools.checker import CheckOptions, check
from twitter_tools.loader import LoadOptions, load

REPOSITORY = Path(__file__).resolve().parents[1]
SERVICES = ("gateway", "account", "post", "timeline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql (default both)")
    parser.add_argument("--seconds", type=int, default=15, help="duration of each workload, in seconds (default 15)")
    parser.add_argument(
        "--warm-up",
        type=_whole_seconds,
        default=3,
        help="seconds each workload runs first, not counted (default 3; 0 for none)",
    )
    parser.add_argument("--connections", type=int, default=32, help="open connections of the load generator (default 32)")
    parser.add_argument("--probes", type=int, default=30, help="posts measured for fan-out delay (default 30)")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "bench" / "RESULTS.md", help="results file")
    parser.add_argument("--nodes", type=int, help="load only graph nodes 0 to N-1, for a quick trial run (default: all)")
    parser.add_argument("--max-tweets", type=int, help="post at most this many dataset tweets, for a quick trial run")
    args = parser.parse_args(argv)

    try:
        ensure_wrk()
    except WrkMissing as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 2
    report = Report(
        command=" ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        machine=machine_facts(),
        seconds=args.seconds,
        connections=args.connections,
        warm_up=args.warm_up,
    )
    report.baseline = measure_baseline(seconds=args.seconds, connections=args.connections, warm_up=args.warm_up)
    print(f"baseline: {report.baseline.per_second:.0f} requests/s", flush=True)
    for backend in [name.strip() for name in args.backends.split(",") if name.strip()]:
        report.backends.append(
            run_backend(backend, args=args, load_options=LoadOptions(node_limit=args.nodes, max_tweets=args.max_tweets))
        )
    report.machine["load average at the end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    text = write_report(report, args.output)
    print(text)
    return 0


def _whole_seconds(text: str) -> int:
    """Parse a whole number of seconds, 0 or more, for ``--warm-up``."""
    try:
        seconds = int(text)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give a whole number of seconds, 0 or more")
    return seconds


def machine_facts() -> dict[str, str]:
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        "unknown",
    )
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu_model,
        "memory": f"{memory_kb // 1024} MiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "load generator": wrk_version.split(" Copyright")[0],
        "load average at the start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def measure_baseline(*, seconds: int, connections: int, warm_up: int = 0) -> Measurement:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(REPOSITORY / "bench" / "_baseline_server.py"), str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + "/")
        if warm_up > 0:
            run_wrk(name="baseline", workload="baseline", url=url, seconds=warm_up, connections=connections)
        return run_wrk(name="baseline", workload="baseline", url=url, seconds=seconds, connections=connections)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_backend(backend: str, *, args: argparse.Namespace, load_options: LoadOptions) -> BackendResult:
    result = BackendResult(backend=backend)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{backend}-")))
        env = {"TWITTER_RATE_LIMIT_ENABLED": "false"}
        if backend == "postgresql":
            try:
                server = stack.enter_context(running_postgres())
            except PostgresUnavailable as error:
                result.skipped = f"no PostgreSQL server binaries: {error}"
                print(f"{backend}: skipped, {result.skipped}", flush=True)
                return result
            for owner in ("account", "post", "timeline"):
                env[f"TWITTER_{owner.upper()}_DATABASE_URL"] = server.create_database(owner)
        elif backend != "sqlite":
            raise SystemExit(f"python -m bench: unknown backend {backend!r}; use sqlite or postgresql")
        system = stack.enter_context(running_system(folder, **env))
        load_options.base_url = system.base_url
        load_options.tokens_path = folder / "tokens.json"
        _measure_system(result, system, load_options=load_options, args=args)
    return result


def _measure_system(result: BackendResult, system: RunningSystem, *, load_options: LoadOptions, args: argparse.Namespace) -> None:
    pids = {service: system.service_pid(service) for service in SERVICES}
    name = result.backend
    assert load_options.tokens_path is not None
    folder = load_options.tokens_path.parent

    summary = asyncio.run(load(load_options))
    result.load_lines = summary.lines()
    result.load_seconds = summary.seconds
    print(f"{name}: load {summary.seconds:.1f} s", flush=True)

    check_started = time.monotonic()
    report = asyncio.run(
        check(CheckOptions(base_url=system.base_url, node_limit=load_options.node_limit, tokens_path=load_options.tokens_path))
    )
    result.check_line = report.lines()[-1]
    result.check_mismatches = len(report.mismatches)
    result.check_seconds = time.monotonic() - check_started
    print(f"{name}: {result.check_line}", flush=True)
    result.rss_after_load = {service: rss_mb(pid) for service, pid in pids.items()}

    accounts_file = folder / "accounts.txt"
    accounts_file.write_text("".join(f"{a.token} {a.id}\n" for a in summary.accounts.values()))
    def run(workload: str) -> Measurement:
        # A warm-up that is not counted fills the services' memos, so the count is of a running system.
        if args.warm_up > 0:
            wait_for_timelines(system)
            generate(workload, seconds=args.warm_up)
        # Each workload starts with every acknowledged event applied, so none pays for the one before.
        result.drains[workload] = wait_for_timelines(system)
        return generate(workload, seconds=args.seconds)

    def generate(workload: str, *, seconds: int) -> Measurement:
        return run_wrk(
            name=workload,
            workload=workload,
            url=system.base_url,
            seconds=seconds,
            connections=args.connections,
            accounts_file=accounts_file,
        )

    result.workloads.append(run("home"))
    print(f"{name}: home {result.workloads[-1].per_second:.0f} requests/s", flush=True)

    # Before the write workloads, so the timeline service has no backlog to drain during the probes.
    followees = read_graph(default_data_dir(), node_limit=load_options.node_limit).followees()
    most_followed = max(followees, key=lambda node: (len(followees[node]), -node))
    result.fanout = asyncio.run(
        measure_fanout(
            system.base_url,
            author=summary.accounts[most_followed],
            followers=[summary.accounts[node] for node in sorted(followees[most_followed])],
            probes=args.probes,
        )
    )
    print(f"{name}: fan-out p99 {result.fanout.percentile(99):.0f} ms", flush=True)

    for workload in ("post", "mixed"):
        result.workloads.append(run(workload))
        print(f"{name}: {workload} {result.workloads[-1].per_second:.0f} requests/s", flush=True)
    result.rss_after_workloads = {service: rss_mb(pid) for service, pid in pids.items()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
