"""Home entries keyed by owner only: no status or author index, and clustered on SQLite.

A post's fan-out writes one entry per follower, and each entry went into the table
and three indexes. Removals now find their entries through the follow mirror by
owner (an entry of author A is only ever in A's own timeline and in those of A's
followers), so the primary key is the only index needed. On SQLite the table is
rebuilt WITHOUT ROWID, which makes the primary key the table itself.

Revision ID: timeline_0002
Revises: timeline_0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "timeline_0002"
down_revision = "timeline_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step can run again: on SQLite a DDL statement outside the copy's transaction commits at
    # once, so a run stopped midway (a crash, a full disk) leaves some steps done and the revision unchanged.
    op.execute("DROP INDEX IF EXISTS home_entries_by_status")
    op.execute("DROP INDEX IF EXISTS home_entries_by_author")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_without_rowid()


def _rebuild_without_rowid() -> None:
    if "home_entries" in sa.inspect(op.get_bind()).get_table_names():
        op.execute("DROP TABLE IF EXISTS home_entries_clustered")  # a partial copy from a stopped run
        op.create_table(
            "home_entries_clustered",
            sa.Column("owner_id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("status_id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("author_id", sa.BigInteger, nullable=False),
            sa.Column("reblog_of_id", sa.BigInteger, nullable=True),
            sqlite_with_rowid=False,
        )
        op.execute(
            "INSERT INTO home_entries_clustered (owner_id, status_id, author_id, reblog_of_id)"
            " SELECT owner_id, status_id, author_id, reblog_of_id FROM home_entries ORDER BY owner_id, status_id"
        )
        op.drop_table("home_entries")
    op.rename_table("home_entries_clustered", "home_entries")


def downgrade() -> None:
    # On SQLite the table stays WITHOUT ROWID, which the first revision's statements work with.
    op.create_index("home_entries_by_status", "home_entries", ["status_id"])
    op.create_index("home_entries_by_author", "home_entries", ["author_id", "owner_id"])
