"""Embedded mode as a user runs it: ``twitter-system run``, curl-like requests, Ctrl-C, a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.system import running_system, stop_system, wait_until_ready

pytestmark = pytest.mark.slow


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_run_serves_the_instance_document_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        instance = get_json(system.base_url + "/api/v1/instance/")
        pids = system.service_pids()

        assert instance["version"].startswith("4.5.0")
        assert instance["stats"] == {"user_count": 0, "status_count": 0, "domain_count": 1}
        assert len(pids) == 4

        exit_code = stop_system(system)

    assert exit_code == 0
    assert system.service_pids() == []
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_crashed_service_is_restarted_by_the_runner(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        old_pid = system.service_pid("account")

        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                new_pid = system.service_pid("account")
            except LookupError:
                new_pid = None
            if new_pid not in (None, old_pid):
                break
            time.sleep(0.2)
        wait_until_ready(system.base_url + "/readyz")

        assert new_pid not in (None, old_pid)


def test_services_stop_when_the_runner_is_killed(tmp_path: Path) -> None:
    with running_system(tmp_path) as system:
        pids = system.service_pids()

        system.process.kill()
        system.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)

        assert len(pids) == 4
        assert system.service_pids() == []


def test_runner_refuses_ports_in_use(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    with running_system(tmp_path / "first") as first:
        second = subprocess.run(
            [sys.executable, "-m", "twitter_tools.cli", "run", "--gateway-port", first.base_url.rsplit(":", 1)[1]],
            env={**first.env, "TWITTER_DATA_DIR": str(tmp_path / "second")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert second.returncode == 1
        assert "run.ports_in_use" in second.stdout
        assert get_json(first.base_url + "/api/v1/instance")["version"].startswith("4.5.0")
