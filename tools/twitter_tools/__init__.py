"""Commands and tools around the services: the CLI, embedded runner, backups, loader."""
