"""Home timeline entries, the mirror of the follow graph and the shared tables.

Revision ID: timeline_0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from twitter_migrations.shared_tables import create_shared_tables, drop_shared_tables

revision = "timeline_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_shared_tables()
    op.create_table(
        "home_entries",
        sa.Column("owner_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("status_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("author_id", sa.BigInteger, nullable=False),
        sa.Column("reblog_of_id", sa.BigInteger, nullable=True),
    )
    # status.deleted removes one status from every timeline.
    op.create_index("home_entries_by_status", "home_entries", ["status_id"])
    # An unfollow removes one author's entries from one timeline; an account deletion, from all.
    op.create_index("home_entries_by_author", "home_entries", ["author_id", "owner_id"])
    op.create_table(
        "follow_mirror",
        # Fan-out reads the followers of one author: the key leads with the followee.
        sa.Column("followee_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("follower_id", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.create_index("follow_mirror_by_follower", "follow_mirror", ["follower_id"])


def downgrade() -> None:
    op.drop_table("follow_mirror")
    op.drop_table("home_entries")
    drop_shared_tables()
