"""Start the operator: ``python -m twitter_operator`` (the operator image's command).

Settings come from ``TWITTER_OPERATOR_*`` variables (see ``runner.OperatorConfig``);
logs are JSON lines on stdout.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import kopf
import structlog

from twitter_operator.runner import ConfigurationError, OperatorConfig, run_operator


def configure_logging() -> None:
    # kopf logs through the standard library; its JSON format keeps every line machine-readable.
    kopf.configure(log_format=kopf.LogFormat.JSON)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    )


def main() -> int:
    configure_logging()
    try:
        config = OperatorConfig.from_environment()
    except ConfigurationError as error:
        structlog.get_logger("twitter_operator").error("operator.invalid_settings", error=str(error))
        return 2
    try:
        asyncio.run(run_operator(config))
    except ConfigurationError as error:
        structlog.get_logger("twitter_operator").error("operator.start_failed", error=str(error))
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
