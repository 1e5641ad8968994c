"""Authorization codes for the OAuth authorization_code grant.

Revision ID: account_0002
Revises: account_0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "account_0002"
down_revision = "account_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("app_id", sa.BigInteger, sa.ForeignKey("oauth_apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("authorization_codes")
