"""Tables of the account database, as SQLAlchemy Core objects for queries (migrations create them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

from twitter_shared.tables import add_shared_tables

metadata = MetaData()
shared = add_shared_tables(metadata)
outbox = shared["outbox"]

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String(30), nullable=False),
    Column("username_key", String(30), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("display_name", String(30), nullable=False),
    Column("note", Text, nullable=False),
    Column("locale", String(16), nullable=False),
    Column("followers_count", Integer, nullable=False),
    Column("following_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

oauth_apps = Table(
    "oauth_apps",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("website", String(500)),
    Column("redirect_uris", Text, nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("client_secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("app_id", BigInteger, ForeignKey("oauth_apps.id", ondelete="CASCADE")),
    Column("account_id", BigInteger, ForeignKey("accounts.id", ondelete="CASCADE")),
    Column("scopes", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

follows = Table(
    "follows",
    metadata,
    Column("id", BigInteger, nullable=False, unique=True),
    Column("follower_id", BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("followee_id", BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("app_id", BigInteger, ForeignKey("oauth_apps.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
