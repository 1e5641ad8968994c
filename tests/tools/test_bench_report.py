"""The benchmark report: ratios, verdicts and the timeline backlog line come from the measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import main as bench_main
from bench._backlog import Drain
from bench._report import BackendResult, Report, write_report
from bench._wrk import Measurement


def measurement(name: str, requests: int, errors: int = 0) -> Measurement:
    return Measurement(
        name=name, requests=requests, seconds=10.0, errors=errors, p50_ms=5.0, p99_ms=20.0, generator_cpu_seconds=1.0
    )


def test_report_states_ratios_and_backlog(tmp_path: Path) -> None:
    report = Report(command="python -m bench", machine={"cores": "2"}, seconds=10, connections=32)
    report.baseline = measurement("baseline", 100_000)
    result = BackendResult(backend="sqlite", load_seconds=100.0, check_line="0 mismatches")
    result.workloads = [measurement("home", 10_000), measurement("post", 3_000, errors=2)]
    result.drains = {"home": Drain(events_behind=0, seconds=0.0), "post": Drain(events_behind=1234, seconds=4.5)}
    report.backends.append(result)
    output = tmp_path / "RESULTS.md"
    output.write_text("old numbers\n<!-- notes below are kept by python -m bench -->\nhand-written notes\n")

    text = write_report(report, output)

    assert "| home timeline reads (20 hydrated statuses) | 1000 | 5.0 | 20.0 | 0 | 0.100 |" in text
    assert "| status posts | 300 | 5.0 | 20.0 | 2 | 0.030 | >= 0.04x, 0 errors | **missed** |" in text
    assert "home timeline reads: 0 events, 0.0 s; status posts: 1234 events, 4.5 s." in text
    assert output.read_text().endswith("hand-written notes\n")
    assert "old numbers" not in output.read_text()


def test_report_states_warm_up(tmp_path: Path) -> None:
    cold = Report(command="python -m bench", machine={}, seconds=10, connections=32)
    warm = Report(command="python -m bench", machine={}, seconds=10, connections=32, warm_up=3)
    texts = []
    for report in (cold, warm):
        report.baseline = measurement("baseline", 100_000)
        texts.append(write_report(report, tmp_path / "RESULTS.md"))

    assert "Each workload ran 10 s with 32 connections;" in texts[0]
    assert "Each workload ran 10 s with 32 connections, after 3 s of the same load that is not counted" in texts[1]


def test_bench_rejects_negative_warm_up(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench_main(["--warm-up", "-5"])

    assert stopped.value.code == 2
    assert "give a whole number of seconds, 0 or more" in capsys.readouterr().err
