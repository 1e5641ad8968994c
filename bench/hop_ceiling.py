"""``python -m bench.hop_ceiling``: the most a home read's call pattern allows on this machine.

A home read goes client -> gateway -> timeline service (the page's ids) -> post
service (the statuses) -> gateway -> client. This measures that pattern with no
database, no token check and no rendering. Three bare aiohttp processes on uvloop
return fixed bytes shaped like the real responses: 20 ids, 20 status records, and
a 20-status page of about 22 KB. The pattern's rate against the baseline, measured
in the same run, is the ceiling that the services' own work divides. The CPU per
request of each process is what the hops alone cost.

Run it from the repository root, on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import web

from bench._wrk import run_wrk
from tests.support.postgres import free_port
from tests.support.system import wait_until_ready

ROLES = ("timeline", "post", "gateway")
PAGE_SIZE = 20
STATUS_IDS = [str(115_000_000_000_000_000 + n) for n in range(PAGE_SIZE)]
STATUS_RECORD = {
    "account_id": "114000000000000001",
    "text": "x" * 140,
    "created_at": "2026-12-04T20:50:15.123Z",
    "mentions": [],
    "replies_count": 0,
    "reblogs_count": 0,
    "favourites_count": 0,
    "favourited": False,
    "reblogged": False,
    "in_reply_to_id": None,
    "in_reply_to_account_id": None,
    "reblog": None,
    "sensitive": False,
    "spoiler_text": "",
    "visibility": "public",
    "language": "en",
}
STATUSES_ANSWER = orjson.dumps(
    {"statuses": [{**STATUS_RECORD, "id": status_id} for status_id in STATUS_IDS], "author_stats": {}}
)
# A Mastodon status has about 30 fields and embeds its author's account of about 25.
PAGE_ENTITY = {
    **STATUS_RECORD,
    **{f"field_{n}": None for n in range(12)},
    "content": "<p>" + "x" * 140 + "</p>",
    "account": {f"account_field_{n}": "value" for n in range(25)},
}
PEERS = web.AppKey("peers", dict)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def timeline_page(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(STATUS_IDS), content_type="application/json")


async def statuses(request: web.Request) -> web.Response:
    return web.Response(body=STATUSES_ANSWER, content_type="application/json")


async def home(request: web.Request) -> web.Response:
    session, peers = request.app[SESSION], request.app[PEERS]
    async with session.get(peers["timeline"] + "/page", params={"limit": str(PAGE_SIZE)}) as response:
        ids = orjson.loads(await response.read())
    params = {"ids": ",".join(ids), "viewer_id": "1"}
    async with session.get(peers["post"] + "/statuses", params=params) as response:
        answer = orjson.loads(await response.read())
    page = [{**PAGE_ENTITY, "id": status["id"]} for status in answer["statuses"]]
    return web.Response(body=orjson.dumps(page), content_type="application/json")


async def _client_session(app: web.Application):  # noqa: ANN202 - an aiohttp cleanup context
    app[SESSION] = aiohttp.ClientSession()
    yield
    await app[SESSION].close()


def serve(role: str, port: int, peers: dict[str, str]) -> None:
    app = web.Application()
    if role == "gateway":
        app[PEERS] = peers
        app.cleanup_ctx.append(_client_session)
        app.router.add_get("/", home)
    else:
        app.router.add_get("/page", timeline_page)
        app.router.add_get("/statuses", statuses)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=uvloop.new_event_loop())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(seconds: int, connections: int) -> None:
    repository = Path(__file__).resolve().parents[1]
    with ExitStack() as stack:
        baseline_port = free_port()
        baseline = subprocess.Popen([sys.executable, str(repository / "bench" / "_baseline_server.py"), str(baseline_port)])
        stack.callback(_stop, baseline)
        ports = {role: free_port() for role in ROLES}
        peers = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}
        processes = {}
        for role in ROLES:
            command = [sys.executable, "-m", "bench.hop_ceiling", "--serve", role, "--port", str(ports[role])]
            command += [f"--peer={name}={url}" for name, url in peers.items()]
            processes[role] = subprocess.Popen(command, cwd=repository)
            stack.callback(_stop, processes[role])
        wait_until_ready(f"http://127.0.0.1:{baseline_port}/")
        wait_until_ready(peers["gateway"] + "/")

        print(f"baseline: {seconds} s at {connections} connections ...", flush=True)
        reference = run_wrk(name="baseline", workload="baseline", url=f"http://127.0.0.1:{baseline_port}", seconds=seconds, connections=connections)
        print(f"baseline: {reference.per_second:,.0f} requests/s", flush=True)

        print(f"two hops: {seconds} s at {connections} connections ...", flush=True)
        before = {role: cpu_seconds(process.pid) for role, process in processes.items()}
        hops = run_wrk(name="hops", workload="baseline", url=peers["gateway"], seconds=seconds, connections=connections)
        spent = {role: cpu_seconds(process.pid) - before[role] for role, process in processes.items()}

    ratio = hops.per_second / reference.per_second if reference.per_second else 0.0
    print(f"two hops: {hops.per_second:,.0f} requests/s, {ratio:.3f}x the baseline, p50 {hops.p50_ms:.1f} ms, p99 {hops.p99_ms:.1f} ms, {hops.errors} errors")
    for role in ROLES:
        print(f"  {role}: {spent[role] / hops.requests * 1000:.3f} ms of CPU per request")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hop_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (default 32)")
    parser.add_argument("--serve", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.port is None:
            parser.error("--serve needs --port")
        serve(args.serve, args.port, dict(peer.split("=", 1) for peer in args.peer))
        return 0
    if args.seconds < 1 or args.connections < 1:
        parser.error("--seconds and --connections must be at least 1")
    measure(args.seconds, args.connections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
