"""The load generator: Debian's ``wrk`` driven by Lua scripts, and what it measured.

wrk is a C program with an event loop per thread, so on a small machine it costs
far less CPU per request than any Python client. Each script picks a random
loaded account per request (tokens and ids come from a file written after the
load) and prints one JSON line in ``done()``. Its CPU time is read from the
kernel's accounting of finished children, which gives the generator's own
ceiling: requests per CPU-second of wrk.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_THREADS = 2
WRK_TIMEOUT_SECONDS = 10
RESULT_MARKER = "WRK_JSON "


class WrkMissing(RuntimeError):
    """wrk is not installed and cannot be installed here."""


@dataclass(frozen=True)
class Measurement:
    name: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    generator_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def generator_ceiling(self) -> float:
        """Requests per CPU-second that wrk spent: what it could send with one core to itself."""
        return self.requests / self.generator_cpu_seconds if self.generator_cpu_seconds else 0.0


# Shared by every script: accounts from the file named by the first script argument, the JSON report.
COMMON_LUA = r"""
local accounts = {}
local counter = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000000))
end

function init(args)
  math.randomseed(seed + os.time())
  if args[1] then
    for line in io.lines(args[1]) do
      local token, id = line:match("^(%S+) (%S+)$")
      if token then accounts[#accounts + 1] = { token = token, id = id } end
    end
  end
end

local function any_account()
  return accounts[math.random(1, #accounts)]
end

local function home(account)
  return wrk.format("GET", "/api/v1/timelines/home?limit=20", { ["Authorization"] = "Bearer " .. account.token })
end

local function own_statuses(account)
  return wrk.format("GET", "/api/v1/accounts/" .. any_account().id .. "/statuses?limit=20",
    { ["Authorization"] = "Bearer " .. account.token })
end

local function post(account)
  counter = counter + 1
  return wrk.format("POST", "/api/v1/statuses", {
    ["Authorization"] = "Bearer " .. account.token,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "status=benchmark+post+" .. counter .. "+from+" .. seed)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '""" + RESULT_MARKER + r"""{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

WORKLOADS = {
    "baseline": "request = function() return wrk.format('GET', '/') end",
    "home": "request = function() return home(any_account()) end",
    "post": "request = function() return post(any_account()) end",
    "mixed": """
request = function()
  local roll = math.random(1, 100)
  local account = any_account()
  if roll <= 60 then return home(account) end
  if roll <= 90 then return own_statuses(account) end
  return post(account)
end
""",
}


def ensure_wrk() -> str:
    """Return wrk's path, installing Debian's package first when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if Path("/usr/bin/apt-get").exists() and _is_root():
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkMissing("the benchmarks need wrk: install it (Debian: `sudo apt-get install wrk`) and run them again")


def _is_root() -> bool:
    return os.geteuid() == 0


def run_wrk(
    *, name: str, workload: str, url: str, seconds: int, connections: int, accounts_file: Path | None = None
) -> Measurement:
    """Run one workload against ``url`` for ``seconds`` with ``connections`` open connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(COMMON_LUA + WORKLOADS[workload])
    command = [
        ensure_wrk(),
        f"--threads={WRK_THREADS}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        f"--script={script.name}",
        url,
    ]
    if accounts_file is not None:
        command += ["--", str(accounts_file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(script.name).unlink(missing_ok=True)
    line = next((text for text in finished.stdout.splitlines() if text.startswith(RESULT_MARKER)), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip() or finished.stdout.strip()}")
    data = json.loads(line[len(RESULT_MARKER) :])
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    return Measurement(
        name=name,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        generator_cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )
