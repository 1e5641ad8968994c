"""``twitter-system run``: embedded mode, all four services as local processes on one machine.

The runner is their supervisor: it applies migrations first (so no service
serves an old schema), starts each service as ``twitter-system serve``, restarts
one that exits unexpectedly (a few times, with a pause), and on Ctrl-C or
SIGTERM stops them all and waits for them. Data stays in SQLite files under the
data folder, so starting again keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from twitter_shared.logs import configure_logging
from twitter_tools.cli import EMBEDDED_TOKEN_FILE
from twitter_shared.migrate import MigrationError, upgrade
from twitter_shared.settings import DATABASE_OWNERS, ServiceName, Settings

log = structlog.get_logger()

START_ORDER = (ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE, ServiceName.GATEWAY)
RESTART_PAUSE_SECONDS = 1.0
# A service that exits more often than this within RESTART_WINDOW_SECONDS is broken, not unlucky.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 30.0
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway-port", type=int, default=8080, help="public port of the gateway (default 8080)")


def service_token(settings: Settings) -> str:
    """Return the configured service token, or one generated once and kept under the data folder."""
    if settings.service_token is not None:
        return settings.service_token.get_secret_value()
    path = settings.data_dir / EMBEDDED_TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)
    return token


def child_environment(settings: Settings, service: ServiceName, *, token: str, gateway_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["TWITTER_SERVICE_TOKEN"] = token
    env["TWITTER_DATA_DIR"] = str(settings.data_dir)
    if service == ServiceName.GATEWAY:
        env["TWITTER_PORT"] = str(gateway_port)
    else:
        env["TWITTER_PORT"] = str(urlsplit(settings.service_url(service)).port or 80)
    if "TWITTER_LOG_FORMAT" not in env and sys.stderr.isatty():
        # Children write to the same terminal but their stdout is not one; keep them readable.
        env["TWITTER_LOG_FORMAT"] = "console"
    return env


class Supervisor:
    def __init__(self, *, settings: Settings, token: str, gateway_port: int) -> None:
        self.settings = settings
        self.token = token
        self.gateway_port = gateway_port
        self.processes: dict[ServiceName, subprocess.Popen] = {}
        self.restarts: dict[ServiceName, list[float]] = {name: [] for name in START_ORDER}
        self.stopping = False

    def start(self, service: ServiceName) -> None:
        command = [sys.executable, "-m", "twitter_tools.cli", "serve", str(service)]
        env = child_environment(self.settings, service, token=self.token, gateway_port=self.gateway_port)
        # A process group of its own: the runner decides when children stop, not the terminal's Ctrl-C.
        # If the runner itself dies (kill -9), the kernel sends SIGTERM to the children (Linux only).
        process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_stop_with_parent)
        self.processes[service] = process
        log.info("run.service_started", target=service, pid=process.pid, port=env["TWITTER_PORT"])

    async def watch(self) -> int:
        """Restart crashed services until stopped; return non-zero if one keeps crashing."""
        while not self.stopping:
            await asyncio.sleep(0.2)
            for service, process in list(self.processes.items()):
                code = process.poll()
                if code is None or self.stopping:
                    continue
                now = time.monotonic()
                recent = [t for t in self.restarts[service] if now - t < RESTART_WINDOW_SECONDS]
                if len(recent) >= MAX_RESTARTS:
                    log.error("run.service_failing", target=service, exit_code=code, action="stopping everything")
                    return 1
                self.restarts[service] = [*recent, now]
                pause = RESTART_PAUSE_SECONDS * 2 ** len(recent)
                log.warning("run.service_exited", target=service, exit_code=code, restart_in_seconds=pause)
                await asyncio.sleep(pause)
                self.start(service)
        return 0

    def stop_all(self) -> None:
        self.stopping = True
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for service, process in self.processes.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("run.service_killed", target=service, pid=process.pid, after_seconds=STOP_GRACE_SECONDS)
                process.kill()
                process.wait()
        log.info("run.stopped")


def _stop_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def busy_ports(settings: Settings, gateway_port: int) -> list[int]:
    """Return the ports of ours that something already listens on; starting there would fail in a loop."""
    ports = [gateway_port] + [urlsplit(settings.service_url(s)).port or 80 for s in START_ORDER if s != ServiceName.GATEWAY]
    busy = []
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, port))
            except OSError:
                busy.append(port)
    return busy


async def _wait_until_serving(url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        await asyncio.sleep(0.2)
    return False


async def _migrate_all(settings: Settings) -> None:
    for owner in DATABASE_OWNERS:
        await upgrade(settings.database_url(owner), history=owner)


async def _run(settings: Settings, gateway_port: int) -> int:
    token = service_token(settings)
    supervisor = Supervisor(settings=settings, token=token, gateway_port=gateway_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    for service in START_ORDER:
        supervisor.start(service)
    watcher = asyncio.create_task(supervisor.watch())
    if await _wait_until_serving(f"http://127.0.0.1:{gateway_port}/healthz"):
        log.info("run.ready", url=f"http://127.0.0.1:{gateway_port}", data_dir=str(Path(settings.data_dir).resolve()), stop="Ctrl-C")
    else:
        log.warning("run.slow_start", url=f"http://127.0.0.1:{gateway_port}", waited_seconds=READY_TIMEOUT_SECONDS)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
    code = watcher.result() if watcher in done else 0
    watcher.cancel()
    stopper.cancel()
    await asyncio.to_thread(supervisor.stop_all)
    return code


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(service="run", log_format=settings.log_format, level=settings.log_level)
    # The databases and the service token are for this user alone.
    os.umask(0o077)
    busy = busy_ports(settings, args.gateway_port)
    if busy:
        log.error("run.ports_in_use", ports=busy, action="stop what listens there, or choose other ports (see the README)")
        return 1
    try:
        asyncio.run(_migrate_all(settings))
    except MigrationError as error:
        log.error("run.migration_failed", error=str(error), action="fix the cause and start again")
        return 1
    return asyncio.run(_run(settings, args.gateway_port))
