"""`assist-bot run | check | chat | cleanup | manifest`: the console script (also `python -m assist_bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from assist_bot.errors import AssistBotError, SettingsError
from assist_bot.logs import setup_logging
from assist_bot.settings import Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assist-bot", description="An OpenAI-powered assistant for Slack.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the bot (the default)")
    run.add_argument(
        "--mode",
        choices=("auto", "socket", "http"),
        default="auto",
        help="auto: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (default)",
    )
    sub.add_parser("check", help="ask Slack, OpenAI, Redis and SMTP whether the settings work; one line each")
    chat = sub.add_parser("chat", help="talk to an assistant in the terminal (no Slack needed)")
    chat.add_argument("--assistant", help="the assistant to talk to (default: the assistants file's default)")
    sub.add_parser("manifest", help="print the Slack app manifest, with a slash command per configured tool")
    cleanup = sub.add_parser("cleanup", help="delete at OpenAI what outlived its retention, then exit")
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check()
    try:
        if args.command == "chat":
            return _chat(args.assistant)
        settings = _settings_for(getattr(args, "mode", "auto"))
        _setup_logging(settings)
        if args.command == "manifest":
            return _manifest(settings)
        if args.command == "cleanup":
            return _cleanup(settings, dry_run=args.dry_run)
        return _run(settings)
    except AssistBotError as exc:
        print(f"assist-bot: {exc}", file=sys.stderr)
        return 2


def _setup_logging(settings: Settings) -> None:
    setup_logging(settings.log_level, log_format=settings.log_format, content=settings.log_content)


def _settings_for(mode: str) -> Settings:
    if mode == "http":
        return load_settings(SLACK_APP_TOKEN=None)
    settings = load_settings()
    if mode == "socket" and not settings.socket_mode:
        raise SettingsError("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…)")
    return settings


def _manifest(settings: Settings) -> int:
    from assist_bot.manifest import render
    from assist_bot.tools.loading import load_registry

    print(render(load_registry(settings)), end="")
    return 0


def _check() -> int:
    """One line per service; exit code 0 only when none failed."""
    from assist_bot.checks import failed, print_checks

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(failed("settings", str(exc), "see the Settings table in README.md").render())
        return 1
    # The lines are the output; the SDKs' request logs would only bury them.
    setup_logging("WARNING" if settings.log_level != "DEBUG" else "DEBUG", log_format=settings.log_format)
    return asyncio.run(print_checks(settings, print))


def _chat(assistant: str | None) -> int:
    from assist_bot.chat import chat

    settings = load_settings(chat=True)
    # The conversation is the output: only errors (or everything at DEBUG) go to stderr.
    setup_logging("DEBUG" if settings.log_level == "DEBUG" else "ERROR", log_format=settings.log_format)
    return asyncio.run(chat(settings, assistant=assistant))


def _cleanup(settings: Settings, *, dry_run: bool) -> int:
    from assist_bot.janitor import cleanup_once

    return asyncio.run(cleanup_once(settings, dry_run=dry_run, say=print))


def _run(settings: Settings) -> int:
    from assist_bot.app import AssistBot

    bot = AssistBot(settings)
    asyncio.run(bot.run_until_signalled())
    logging.getLogger(__name__).info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
