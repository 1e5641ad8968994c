"""Alembic migration histories, one per database (account, post, timeline)."""
