"""Accounts, OAuth apps, access tokens, follows and the shared tables.

Revision ID: account_0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from twitter_migrations.shared_tables import create_shared_tables, drop_shared_tables

revision = "account_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_shared_tables()
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("username", sa.String(30), nullable=False),
        # Lower-cased username and email: uniqueness without regard to case, on both databases.
        sa.Column("username_key", sa.String(30), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(30), nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
        sa.Column("followers_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("following_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "oauth_apps",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("website", sa.String(500), nullable=True),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("client_secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("app_id", sa.BigInteger, sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"), nullable=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("access_tokens_account", "access_tokens", ["account_id"])
    op.create_table(
        "follows",
        sa.Column("id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("follower_id", sa.BigInteger, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("followee_id", sa.BigInteger, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("follows_by_followee", "follows", ["followee_id", "id"])
    op.create_index("follows_by_follower", "follows", ["follower_id", "id"])


def downgrade() -> None:
    for table in ("follows", "access_tokens", "oauth_apps", "accounts"):
        op.drop_table(table)
    drop_shared_tables()
