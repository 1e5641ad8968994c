"""The baseline: a bare aiohttp hello-world JSON endpoint in one process.

It is served the way the services are (``web.run_app`` on uvloop's event loop, no
access log), so the ratio of a workload to it says what the system's own work
costs on this machine, not what uvloop saves. Run as
``python bench/_baseline_server.py PORT``.
"""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
