"""Fixtures of the post service tests: the real services on SQLite and on PostgreSQL."""

from tests.post.cluster import cluster  # noqa: F401 - fixtures are found by name
