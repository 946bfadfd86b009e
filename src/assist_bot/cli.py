"""`assist-bot run | check`: the console script (also `python -m assist_bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from assist_bot.errors import AssistBotError, SettingsError
from assist_bot.logs import setup_logging
from assist_bot.settings import Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assist-bot", description="An OpenAI-powered assistant for Slack.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the bot (the default)")
    run.add_argument(
        "--mode",
        choices=("auto", "socket", "http"),
        default="auto",
        help="auto: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (default)",
    )
    sub.add_parser("check", help="validate the settings and the assistants file, then exit")
    sub.add_parser("manifest", help="print the Slack app manifest, with a slash command per configured tool")
    _add_cleanup(sub)
    args = parser.parse_args(argv)
    try:
        settings = _settings_for(getattr(args, "mode", "auto"))
        setup_logging(settings.log_level)
        if args.command == "manifest":
            return _manifest(settings)
        if args.command == "check":
            return _check(settings)
        if args.command == "cleanup":
            return _cleanup(settings, dry_run=args.dry_run)
        return _run(settings)
    except AssistBotError as exc:
        print(f"assist-bot: {exc}", file=sys.stderr)
        return 2


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


def _check(settings: Settings) -> int:
    from assist_bot.assistants import Assistants

    assistants = Assistants.load(settings.assistants_file, model=settings.model)
    mode = "Socket Mode" if settings.socket_mode else f"HTTP on port {settings.port}"
    store = "Redis" if settings.redis_url else "in-process memory"
    print(f"ok: {mode}, {store} store, assistants: {', '.join(assistants.names())} (default {assistants.default_name})")
    for line in asyncio.run(_backends(settings, assistants)):
        print(line)
    return 0


def _add_cleanup(sub) -> None:
    cleanup = sub.add_parser("cleanup", help="delete at OpenAI what outlived its retention, then exit")
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")


def _cleanup(settings: Settings, *, dry_run: bool) -> int:
    from assist_bot.janitor import cleanup_once

    return asyncio.run(cleanup_once(settings, dry_run=dry_run, say=print))


async def _backends(settings: Settings, assistants) -> list[str]:
    """Each assistant's model server and how its threads keep state (`auto` asks the server)."""
    from assist_bot.app import openai_client
    from assist_bot.engine.backends import Backends

    client = openai_client(settings)
    backends = Backends(settings=settings, assistants=assistants, default_client=client)
    try:
        resolved = await backends.resolve()
    finally:
        await backends.close()
        await client.close()
    lines = []
    for name, backend in resolved.items():
        probed = (assistants.get(name).backend.state or settings.state) == "auto"
        lines.append(
            f"assistant {name}: {backend.where}, state {backend.state}{' (auto: asked the server)' if probed else ''}, "
            f"hosted tools {'on' if backend.hosted_tools else 'off'}"
        )
    return lines


def _run(settings: Settings) -> int:
    asyncio.run(_serve(settings))
    logging.getLogger(__name__).info("stopped")
    return 0


async def _serve(settings: Settings) -> None:
    # The whole app is built inside the running loop: aiohttp sessions and the Socket Mode
    # client refuse to be created outside one.
    from assist_bot.app import AssistBot

    await AssistBot(settings).run_until_signalled()


if __name__ == "__main__":
    sys.exit(main())
