"""Fixtures of the timeline service tests: the real services on SQLite and on PostgreSQL."""

from tests.post.cluster import cluster, postgres_server  # noqa: F401 - fixtures are found by name
