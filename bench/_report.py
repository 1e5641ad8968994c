"""``bench/RESULTS.md``: the numbers a run measured, with the targets they are held against.

The file is rewritten by every run, except the part after ``NOTES_MARKER``:
profiles and before/after records written by hand stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench._backlog import Drain
from bench._fanout import FanoutResult
from bench._wrk import Measurement

NOTES_MARKER = "<!-- notes below are kept by python -m bench -->"

# Minimum requests per second as a share of the baseline's, per workload.
THROUGHPUT_TARGETS = {"home": 0.08, "post": 0.04, "mixed": 0.06}
HOME_P99_TARGET_MS = 50.0
FANOUT_P99_TARGET_MS = 1000.0
LOAD_TARGET_SECONDS = 180.0
RSS_TARGET_MB = 150.0
WORKLOAD_TITLES = {
    "home": "home timeline reads (20 hydrated statuses)",
    "post": "status posts",
    "mixed": "mixed: 60% home, 30% account statuses, 10% posts",
}


@dataclass
class BackendResult:
    backend: str
    skipped: str = ""
    load_lines: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    check_line: str = ""
    check_mismatches: int = 0
    check_seconds: float = 0.0
    workloads: list[Measurement] = field(default_factory=list)
    fanout: FanoutResult | None = None
    # The timeline backlog found before each workload, by workload name.
    drains: dict[str, Drain] = field(default_factory=dict)
    rss_after_load: dict[str, float] = field(default_factory=dict)
    rss_after_workloads: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    command: str
    machine: dict[str, str]
    seconds: int
    connections: int
    warm_up: int = 0
    baseline: Measurement | None = None
    backends: list[BackendResult] = field(default_factory=list)


def _warm_up(report: Report) -> str:
    if report.warm_up <= 0:
        return ""
    return f", after {report.warm_up} s of the same load that is not counted (the baseline's too)"


def write_report(report: Report, path: Path) -> str:
    """Write the report over ``path``, keeping its hand-written notes; return the generated part."""
    generated = "\n".join(_lines(report)) + "\n"
    notes = ""
    if path.exists():
        old = path.read_text()
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1]
    path.write_text(generated + "\n" + NOTES_MARKER + notes)
    return generated


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _lines(report: Report) -> list[str]:
    baseline = report.baseline
    assert baseline is not None
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{report.command}` (from the repository root; `make bench` runs the same).",
        f"Each workload ran {report.seconds} s with {report.connections} connections{_warm_up(report)};",
        "every non-2xx response and every socket error counts as an error. Each system was started afresh by the command, in",
        "embedded mode (`twitter-system run`) with `TWITTER_RATE_LIMIT_ENABLED=false`, and loaded with",
        "`twitter-system load`'s code; PostgreSQL is a throwaway server (tests/support/postgres.py,",
        "started with fsync=off) and SQLite runs in WAL mode with synchronous=NORMAL.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in report.machine.items()],
        "",
        "## Baseline and load generator",
        "",
        "| | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        f"| bare aiohttp hello-world JSON, one process | {baseline.per_second:.0f} | {baseline.p50_ms:.1f} | "
        f"{baseline.p99_ms:.1f} | {baseline.errors} |",
        "",
        f"Load generator ceiling: wrk spent {baseline.generator_cpu_seconds:.2f} CPU-seconds on "
        f"{baseline.requests} baseline requests, that is {baseline.generator_ceiling:.0f} requests per "
        f"CPU-second, {baseline.generator_ceiling / baseline.per_second:.1f}x the baseline's rate; so at the "
        f"baseline it used {100 * baseline.per_second / baseline.generator_ceiling:.0f}% of one core and is "
        "not the bottleneck.",
    ]
    for backend in report.backends:
        lines += ["", *_backend_lines(backend, baseline)]
    return lines


def _backend_lines(result: BackendResult, baseline: Measurement) -> list[str]:
    title = {"sqlite": "Embedded, SQLite", "postgresql": "Embedded processes, PostgreSQL"}.get(result.backend, result.backend)
    lines = [f"## {title}", ""]
    if result.skipped:
        return [*lines, f"Skipped: {result.skipped}."]

    lines += [
        f"### Load: {result.load_seconds:.1f} s, target under {LOAD_TARGET_SECONDS:.0f} s: "
        f"{_met(result.load_seconds < LOAD_TARGET_SECONDS)}",
        "",
        "```",
        *result.load_lines,
        "```",
        "",
        f"Checker after the load: {result.check_line} ({result.check_seconds:.1f} s including logins).",
        "",
        "### Workloads",
        "",
        "| workload | requests/s | p50 ms | p99 ms | errors | x baseline | target | |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for measurement in result.workloads:
        ratio = measurement.per_second / baseline.per_second
        target = THROUGHPUT_TARGETS[measurement.name]
        ok = ratio >= target and measurement.errors == 0
        target_text = f">= {target}x, 0 errors"
        if measurement.name == "home":
            ok = ok and measurement.p99_ms < HOME_P99_TARGET_MS
            target_text += f", p99 < {HOME_P99_TARGET_MS:.0f} ms"
        lines.append(
            f"| {WORKLOAD_TITLES[measurement.name]} | {measurement.per_second:.0f} | {measurement.p50_ms:.1f} | "
            f"{measurement.p99_ms:.1f} | {measurement.errors} | {ratio:.3f} | {target_text} | {_met(ok)} |"
        )
    if result.drains:
        waits = "; ".join(
            f"{WORKLOAD_TITLES[name].split(' (')[0].split(':')[0]}: {drain.events_behind} events, {drain.seconds:.1f} s"
            for name, drain in result.drains.items()
        )
        lines += [
            "",
            "Posts are acknowledged before they are fanned out, so before each workload's counted run (after "
            "its warm-up) the command waited for the timeline service to apply every event. How far behind it "
            f"was, and how long it took to catch up: {waits}.",
        ]
    if result.fanout is not None:
        fanout = result.fanout
        p99 = fanout.percentile(99)
        lines += [
            "",
            f"### Fan-out delay, {fanout.author} to {fanout.followers} followers, {len(fanout.delays_ms)} posts",
            "",
            f"p50 {fanout.percentile(50):.0f} ms, p99 {p99:.0f} ms, max {max(fanout.delays_ms):.0f} ms "
            f"(target p99 < {FANOUT_P99_TARGET_MS:.0f} ms: {_met(p99 < FANOUT_P99_TARGET_MS)}); followers that lacked a "
            f"post when the sweep read them: {fanout.late_followers}.",
        ]
    lines += [
        "",
        f"### Memory (RSS, MB; target under {RSS_TARGET_MB:.0f} MB after the load)",
        "",
        "| service | after the load | after the workloads | |",
        "|---|---:|---:|---|",
    ]
    for service, after_load in result.rss_after_load.items():
        after_workloads = result.rss_after_workloads.get(service, float("nan"))
        lines.append(f"| {service} | {after_load:.0f} | {after_workloads:.0f} | {_met(after_load < RSS_TARGET_MB)} |")
    return lines
