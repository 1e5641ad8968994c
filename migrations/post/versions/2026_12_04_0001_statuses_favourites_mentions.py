"""Statuses, mentions, favourites, idempotency keys, per-author stats and the shared tables.

Revision ID: post_0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from twitter_migrations.shared_tables import create_shared_tables, drop_shared_tables

revision = "post_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_shared_tables()
    op.create_table(
        "statuses",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_reply_to_id", sa.BigInteger, nullable=True),
        sa.Column("in_reply_to_account_id", sa.BigInteger, nullable=True),
        sa.Column("reblog_of_id", sa.BigInteger, nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False, server_default="public"),
        sa.Column("spoiler_text", sa.Text, nullable=False, server_default=""),
        sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("replies_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reblogs_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("favourites_count", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("statuses_by_account", "statuses", ["account_id", "id"])
    op.create_index("statuses_by_parent", "statuses", ["in_reply_to_id"])
    # One reblog per account and original; NULLs (ordinary statuses) never collide.
    op.create_index("statuses_one_reblog", "statuses", ["reblog_of_id", "account_id"], unique=True)
    op.create_table(
        "mentions",
        sa.Column("status_id", sa.BigInteger, sa.ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.BigInteger, primary_key=True),
        sa.Column("username", sa.String(30), nullable=False),
    )
    op.create_index("mentions_by_account", "mentions", ["account_id"])
    op.create_table(
        "favourites",
        sa.Column("status_id", sa.BigInteger, sa.ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.BigInteger, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("favourites_by_account", "favourites", ["account_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.BigInteger, primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("idempotency_keys_by_age", "idempotency_keys", ["created_at"])
    op.create_index("idempotency_keys_by_status", "idempotency_keys", ["status_id"])
    op.create_table(
        "account_stats",
        sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("statuses_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in ("account_stats", "idempotency_keys", "favourites", "mentions", "statuses"):
        op.drop_table(table)
    drop_shared_tables()
