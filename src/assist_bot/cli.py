"""`assist-bot run | check`: the console script (also `python -m assist_bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from assist_bot.errors import AssistBotError
from assist_bot.logs import setup_logging
from assist_bot.settings import Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assist-bot", description="An OpenAI-powered assistant for Slack.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default): Socket Mode when SLACK_APP_TOKEN is set, else HTTP")
    sub.add_parser("check", help="validate the settings and the assistants file, then exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level)
        if args.command == "check":
            return _check(settings)
        return _run(settings)
    except AssistBotError as exc:
        print(f"assist-bot: {exc}", file=sys.stderr)
        return 2


def _check(settings: Settings) -> int:
    from assist_bot.assistants import Assistants

    assistants = Assistants.load(settings.assistants_file, model=settings.model)
    mode = "Socket Mode" if settings.socket_mode else f"HTTP on port {settings.port}"
    store = "Redis" if settings.redis_url else "in-process memory"
    print(f"ok: {mode}, {store} store, assistants: {', '.join(assistants.names())} (default {assistants.default_name})")
    return 0


def _run(settings: Settings) -> int:
    from assist_bot.app import AssistBot

    bot = AssistBot(settings)
    asyncio.run(bot.run_until_signalled())
    logging.getLogger(__name__).info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
