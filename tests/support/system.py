"""The whole system as real processes: ``twitter-system run`` in a temporary folder, as a user starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import free_port

STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


@dataclass
class RunningSystem:
    process: subprocess.Popen
    base_url: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path

    def service_pids(self) -> list[int]:
        """Return the pids of this system's service processes, found by their data folder."""
        marker = f"TWITTER_DATA_DIR={self.data_dir}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.process.pid:
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0") and b"serve" in cmdline:
                pids.append(int(entry.name))
        return pids

    def service_pid(self, service: str) -> int:
        for pid in self.service_pids():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if service.encode() in cmdline:
                return pid
        raise LookupError(f"no running {service} process")


def wait_until_ready(url: str, *, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    last_error = "not tried"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last_error = repr(error)
        time.sleep(0.2)
    raise TimeoutError(f"{url} was not ready within {timeout} s: {last_error}")


@contextmanager
def running_system(tmp_path: Path, **settings: str) -> Iterator[RunningSystem]:
    """Start embedded mode on free ports; stop it with SIGINT (as Ctrl-C does) afterwards."""
    data_dir = tmp_path / "var"
    ports = {name: free_port() for name in ("gateway", "account", "post", "timeline")}
    env = {
        **os.environ,
        "TWITTER_DATA_DIR": str(data_dir),
        "TWITTER_ACCOUNT_URL": f"http://127.0.0.1:{ports['account']}",
        "TWITTER_POST_URL": f"http://127.0.0.1:{ports['post']}",
        "TWITTER_TIMELINE_URL": f"http://127.0.0.1:{ports['timeline']}",
        "TWITTER_LOG_FORMAT": "json",
        **settings,
    }
    log_path = tmp_path / "system.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "twitter_tools.cli", "run", "--gateway-port", str(ports["gateway"])],
            env=env,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    system = RunningSystem(process, f"http://127.0.0.1:{ports['gateway']}", data_dir, env, log_path)
    try:
        wait_until_ready(system.base_url + "/readyz")
        yield system
    finally:
        stop_system(system)


def stop_system(system: RunningSystem) -> int:
    if system.process.poll() is None:
        system.process.send_signal(signal.SIGINT)
        try:
            return system.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            system.process.kill()
            system.process.wait()
            raise
    return system.process.returncode


def logged_events(output: str | bytes) -> list[str]:
    """Return the ``event`` of every JSON log line in a process's output, in order."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line)["event"])
            except (ValueError, KeyError):
                continue
    return events
