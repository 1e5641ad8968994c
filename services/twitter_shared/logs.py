"""structlog set-up shared by every process: JSON lines off a terminal, readable console on one."""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

from twitter_shared.settings import LogFormat


def configure_logging(*, service: str, log_format: LogFormat, level: str) -> None:
    """Configure structlog and the standard library logging for this process.

    ``service`` is bound to every event so that lines from the four processes of
    embedded mode, which share one terminal, stay apart.
    """
    use_console = log_format == LogFormat.CONSOLE or (log_format == LogFormat.AUTO and sys.stderr.isatty())
    if use_console:
        renderer = structlog.dev.ConsoleRenderer()
        library_renderer = renderer
        logger_factory = structlog.PrintLoggerFactory(sys.stdout)
    else:
        # orjson renders bytes, several times faster than the standard library; every request writes a line.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps, default=str)
        library_renderer = structlog.processors.JSONRenderer(serializer=_json_text, default=str)
        logger_factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]

    structlog.configure(
        processors=[*shared_processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)

    # Library loggers (aiohttp, alembic, asyncpg) write the same lines at warning and up, a traceback
    # inside its line, so a malformed request that aiohttp logs cannot break the JSON-lines format.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, library_renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
    logging.getLogger("aiohttp.access").setLevel(logging.ERROR)


def _json_text(event: dict, **options: object) -> str:
    return orjson.dumps(event, **options).decode()
