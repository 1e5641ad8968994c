"""The ``twitter-system`` command: one entry point, one subcommand per operation.

Each subcommand lives in its own module that exposes ``add_arguments(parser)`` and
``run(args, settings) -> int``. The modules import their heavy parts (service apps,
HTTP clients) inside ``run``, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pydantic import SecretStr, ValidationError

from twitter_shared.settings import Settings

# Written by ``twitter-system run`` under the data folder (see twitter_tools.embedded).
EMBEDDED_TOKEN_FILE = "service-token"

# name -> (module, one-line help)
SUBCOMMANDS = {
    "run": ("twitter_tools.embedded", "run all four services locally with SQLite (embedded mode)"),
    "serve": ("twitter_tools.serve", "serve one service: account, post, timeline or gateway"),
    "migrate": ("twitter_tools.migrate", "apply database migrations, one database after another"),
    "backup": ("twitter_tools.backup", "dump every database that needs a backup into cold storage"),
    "restore": ("twitter_tools.restore", "verify a backup's checksums, then restore it"),
    "backup-scheduler": ("twitter_tools.scheduler", "run backups on a cron schedule, in the foreground"),
    "rebuild-timelines": ("twitter_tools.rebuild", "regenerate every home timeline from posts and follows"),
    "delete-account": ("twitter_tools.accounts", "delete an account with its tokens, follows and posts"),
    "load": ("twitter_tools.loader", "load the bundled real dataset through the public API"),
    "check": ("twitter_tools.checker", "compare home timelines with what the follow graph implies"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twitter-system", description="Run and operate Twitter System: services, migrations, backups, data."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(module_name=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"twitter-system: invalid settings:\n{error}", file=sys.stderr)
        return 2
    module = importlib.import_module(args.module_name)
    return module.run(args, with_embedded_token(settings))


def with_embedded_token(settings: Settings) -> Settings:
    """Fill in the service token that embedded mode generated, so commands like
    ``rebuild-timelines`` and ``delete-account`` work next to ``twitter-system run``."""
    token_file = settings.data_dir / EMBEDDED_TOKEN_FILE
    if settings.service_token is not None or not token_file.is_file():
        return settings
    return settings.model_copy(update={"service_token": SecretStr(token_file.read_text().strip())})


if __name__ == "__main__":
    sys.exit(main())
