"""Log output: every line a process writes in JSON mode is one JSON object, library errors included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

# A process that logs through structlog, then through a library logger with a traceback (as aiohttp
# does for a malformed request), then a library line below warning, which is dropped.
SCRIPT = """
import logging
import structlog
from twitter_shared.logs import configure_logging
from twitter_shared.settings import LogFormat

configure_logging(service="gateway", log_format=LogFormat.JSON, level="info")
structlog.get_logger().info("own.event", answer=42)
try:
    raise ValueError("Invalid header value char")
except ValueError:
    logging.getLogger("aiohttp.server").exception("Error handling request")
logging.getLogger("alembic").info("below warning")
"""


def test_library_traceback_is_one_json_line() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY,
        env={"PYTHONPATH": str(REPOSITORY / "services"), "PATH": "/usr/bin:/bin"},
    )
    lines = [json.loads(line) for line in finished.stdout.splitlines()]

    assert [line["event"] for line in lines] == ["own.event", "Error handling request"]
    library_line = lines[1]
    assert library_line["logger"] == "aiohttp.server"
    assert library_line["level"] == "error"
    assert library_line["service"] == "gateway"
    assert "ValueError: Invalid header value char" in library_line["exception"]
    assert finished.stderr == ""
