"""Typed settings for every service and command, read once from the environment.

Every variable starts with ``TWITTER_``. ``compose/twitter.env.example`` lists them
all with their defaults; the README's settings table is generated from the same
field descriptions. Settings are passed explicitly into app factories and commands:
nothing reads the environment after start-up.
"""

from __future__ import annotations

import enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from twitter_shared.internal_http import check_service_url

# Embedded mode keeps everything under var/ in the working directory.
DEFAULT_DATA_DIR = Path("var")


class ServiceName(enum.StrEnum):
    ACCOUNT = "account"
    POST = "post"
    TIMELINE = "timeline"
    GATEWAY = "gateway"


# The services that own a database, in the order migrations and backups visit them.
DATABASE_OWNERS = (ServiceName.ACCOUNT, ServiceName.POST, ServiceName.TIMELINE)

DEFAULT_PORTS = {
    ServiceName.GATEWAY: 8080,
    ServiceName.ACCOUNT: 8081,
    ServiceName.POST: 8082,
    ServiceName.TIMELINE: 8083,
}


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """Settings shared by all services; each process uses the part it needs."""

    model_config = SettingsConfigDict(env_prefix="TWITTER_", extra="ignore", frozen=True, env_ignore_empty=True)

    data_dir: Path = Field(
        DEFAULT_DATA_DIR,
        description="Folder for embedded-mode files: SQLite databases, the generated service token.",
    )
    host: str = Field("127.0.0.1", description="Address the service listens on.")
    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port the service listens on; defaults to 8080 gateway, 8081 account, 8082 post, 8083 timeline.",
    )
    service_token: SecretStr | None = Field(
        None,
        description="Shared secret every internal request carries. Required outside embedded mode; "
        "embedded mode generates one under the data folder.",
    )

    account_database_url: str | None = Field(
        None, description="SQLAlchemy URL of the account database; default SQLite under the data folder."
    )
    post_database_url: str | None = Field(
        None, description="SQLAlchemy URL of the post database; default SQLite under the data folder."
    )
    timeline_database_url: str | None = Field(
        None, description="SQLAlchemy URL of the timeline database; default SQLite under the data folder."
    )

    account_url: str = Field("http://127.0.0.1:8081", description="Base URL of the account service.")
    post_url: str = Field("http://127.0.0.1:8082", description="Base URL of the post service.")
    timeline_url: str = Field("http://127.0.0.1:8083", description="Base URL of the timeline service.")

    log_format: LogFormat = Field(
        LogFormat.AUTO, description="auto (console on a terminal, JSON otherwise), json or console."
    )
    log_level: str = Field("info", description="Lowest log level written: debug, info, warning, error.")

    internal_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout of every internal HTTP call, in seconds."
    )
    internal_retries: int = Field(
        2, ge=0, le=10, description="Retries of an idempotent internal call after a failure."
    )
    breaker_failures: int = Field(
        5, ge=1, description="Consecutive failures after which calls to a service stop for a while."
    )
    breaker_reset_seconds: float = Field(
        2.0, gt=0, description="How long an open circuit breaker rejects calls before trying again."
    )
    database_lost_exit_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a service returns 503 without its database before it exits non-zero to be restarted.",
    )
    database_pool_size: int = Field(
        20,
        ge=1,
        le=500,
        description=(
            "PostgreSQL connections each service process keeps open; a request beyond them waits up to 5 s for one."
            " Replicas times this must stay under the server's max_connections. Unused with SQLite."
        ),
    )
    token_cache_seconds: float = Field(
        5.0,
        ge=0,
        description=(
            "How long a gateway process trusts a checked access token (0 turns the cache off). A token revoked"
            " through the same process stops at once; this bounds the delay on other gateway replicas while"
            " the gateway is not following the account events (see TWITTER_EVENT_CACHE_SECONDS)."
        ),
    )
    account_cache_seconds: float = Field(
        5.0,
        ge=0,
        description=(
            "How long a gateway process reuses account records in the statuses it renders (0 turns the cache"
            " off). Profile edits and follows through the same process show at once; this bounds the delay on"
            " other gateway replicas while the gateway is not following the account events."
        ),
    )
    event_cache_seconds: float = Field(
        300.0,
        ge=0,
        description=(
            "How long a gateway process keeps checked tokens and account records while it follows the account"
            " service's events, which drop changed entries within a second. 0 stops following, and the two"
            " settings above alone bound the delay."
        ),
    )

    rate_limit_enabled: bool = Field(True, description="Apply the public API rate limits.")
    rate_limit_requests: int = Field(300, ge=1, description="Requests per account (or address) per period.")
    rate_limit_period_seconds: int = Field(300, ge=1, description="Length of the rate-limit period.")
    registration_limit: int = Field(5, ge=1, description="Registrations per address per registration period.")
    registration_period_seconds: int = Field(1800, ge=1, description="Length of the registration period.")
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=10,
        description="Reverse proxies in front of the gateway that append to X-Forwarded-For; "
        "rate limits count the address that many entries from the right (production Compose: 1).",
    )

    instance_domain: str = Field("localhost:8080", description="Domain shown in the instance document.")
    public_url: str | None = Field(
        None,
        description="Public base URL for links in API responses (e.g. https://social.example). "
        "Unset, it is taken from each request's Host header, and a request whose Host is not a plain host name "
        "or address (with an optional port) gets a 400: set it in production.",
    )
    instance_title: str = Field("Twitter System", description="Title shown in the instance document.")

    timeline_max_entries: int = Field(800, ge=20, description="Entries kept per home timeline, newest first.")
    outbox_poll_seconds: float = Field(
        0.2, gt=0, description="How often an event consumer polls an outbox when it has caught up."
    )

    backup_dir: Path | None = Field(
        None, description="Cold-storage folder for backups; default backups/ under the data folder."
    )
    backup_keep: int = Field(6, ge=1, description="Backups kept; older ones are pruned after a good backup.")
    backup_schedule: str = Field(
        "0 */4 * * *",
        description="Cron schedule of the backup scheduler, in UTC: five fields, or six with a leading seconds field (for tests).",
    )

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if not value:
            return value
        # Every link starts with this value as it is, so it must need no quoting.
        plain = value.isascii() and value.isprintable() and not any(mark in value for mark in " ?#")
        parts = urlsplit(value)
        if not plain or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"public_url {value!r} must be an http:// or https:// URL with a host, an optional path,"
                " and no spaces, query or fragment"
            )
        return value.rstrip("/")

    @field_validator("account_url", "post_url", "timeline_url")
    @classmethod
    def _service_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            check_service_url(value)
        except ValueError as error:
            raise ValueError(f"TWITTER_{(info.field_name or '').upper()}: {error}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError(f"unknown log level {value!r}: use debug, info, warning or error")
        return value.lower()

    def database_url(self, owner: ServiceName) -> str:
        """Return the database URL of ``owner``, falling back to SQLite under the data folder."""
        configured = {
            ServiceName.ACCOUNT: self.account_database_url,
            ServiceName.POST: self.post_database_url,
            ServiceName.TIMELINE: self.timeline_database_url,
        }[owner]
        if configured:
            return configured
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{owner}.db').as_posix()}"

    def service_url(self, name: ServiceName) -> str:
        return {
            ServiceName.ACCOUNT: self.account_url,
            ServiceName.POST: self.post_url,
            ServiceName.TIMELINE: self.timeline_url,
        }[name].rstrip("/")

    def listen_port(self, name: ServiceName) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[name]

    def backup_folder(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"
