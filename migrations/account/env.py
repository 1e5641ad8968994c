"""Alembic entry point for this history; the shared body lives in twitter_migrations.environment."""

from twitter_migrations.environment import run_migrations

run_migrations()
