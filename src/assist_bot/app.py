"""Composition root: settings → store → clients → engine → dispatcher → the Slack
surfaces on the Bolt app → start and stop (the transport among them). Reads like a
routing table; how each piece works is in its own module."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot.assistants import Assistants
from assist_bot.dispatch import Dispatcher
from assist_bot.dispatch_ports import Limits
from assist_bot.engine.backends import Backends, default_client
from assist_bot.engine.knowledge import Knowledge
from assist_bot.engine.turns import Engine
from assist_bot.errors import SettingsError
from assist_bot.instrument import SlackCallCounter, openai_http_client
from assist_bot.janitor import Janitor
from assist_bot.metrics import Metrics, MetricsListener
from assist_bot.models import warn_retiring_models
from assist_bot.observe import TurnObserver
from assist_bot.settings import Settings
from assist_bot.slack import (
    agent_view,
    approvals,
    bolt_app,
    commands,
    feedback,
    home,
    housekeeping,
    log_ids,
    mentions,
    messages,
    oauth,
    operating,
    replay,
    shortcuts,
    stop,
    tool_commands,
)
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.bolt_app import Identity
from assist_bot.slack.calls import RateGate
from assist_bot.slack.clients import OneWorkspace, SlackClients
from assist_bot.slack.deps import SurfaceDeps
from assist_bot.slack.files import SlackFiles
from assist_bot.slack.http_mode import CallLater, loop_call_later
from assist_bot.slack.notices import SlackNotices
from assist_bot.slack.pacing import Pacer
from assist_bot.slack.people import People
from assist_bot.slack.reply import SlackReplies
from assist_bot.slack.transport import Transport, transport_for
from assist_bot.store import open_store
from assist_bot.store.base import QueueCaps, Store
from assist_bot.store.ledger import Ledger, open_ledger
from assist_bot.tools.loading import load_registry
from assist_bot.usage import Budgets, Meter

log = logging.getLogger(__name__)

HEARTBEAT_TTL = 30.0  # seconds a replica counts as alive after its last beat


def slack_client(settings: Settings, metrics: Metrics | None = None) -> AsyncWebClient:
    # Retries by design: 429s wait for Retry-After, 5xx and dropped connections retry.
    # Many workspaces (OAuth): no token here; each workspace's client copies this one with its own.
    # The counter comes first: it sees every attempt and never retries.
    counter = [SlackCallCounter(metrics, api_url=settings.slack_api_url)] if metrics else []
    return AsyncWebClient(
        token=_secret(settings.slack_bot_token),
        base_url=settings.slack_api_url,
        retry_handlers=[
            *counter,
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class AssistBot:
    def __init__(
        self,
        settings: Settings,
        *,
        assistants: Assistants | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        deadline: Callable[[float], asyncio.Timeout] = asyncio.timeout,
        call_later: CallLater = loop_call_later,
        http_deadline: Callable[[float], asyncio.Timeout] = asyncio.timeout,
    ) -> None:
        """`sleep` and `deadline` are the clock of every time-out a turn waits out (an
        approval's, a response's) and of its back-offs; `call_later` and `http_deadline`
        time slow HTTP clients (their own, so that one test's deadlines are not another's).
        Tests pass ones they control."""
        self.settings = settings
        self._deadline = deadline
        self._call_later = call_later
        self._http_deadline = http_deadline
        self.assistants = assistants or Assistants.load(settings.assistants_file, model=settings.model)
        self.store = open_store(
            redis_url=settings.redis_url,
            retention_seconds=settings.retention_seconds,
            redis_max_connections=settings.redis_max_connections,
        )
        self.metrics = Metrics()
        self.slack = slack_client(settings, self.metrics)
        self.openai = default_client(settings, http_client=openai_http_client(self.metrics))
        self.tools = load_registry(settings)
        self.oauth = oauth.build(settings, base=self.slack) if settings.oauth else None
        # Work that outlives an event (turns, approvals, names) asks for its workspace's client.
        clients: SlackClients = self.oauth.clients if self.oauth else OneWorkspace(self.slack)
        # Every model server's client counts its calls and tokens in /metrics, as the default's does.
        self.backends = Backends(
            settings=settings,
            assistants=self.assistants,
            default_client=self.openai,
            http_client=lambda: openai_http_client(self.metrics),
        )
        self.ledger, self.meter, self.janitor = _operations(settings, self.store, clients, self.backends, sleep)
        self._janitor_task: asyncio.Task[None] | None = None
        self.knowledge = Knowledge(
            backends=self.backends,
            store=self.store,
            settings=settings,
            meter=self.meter,
        )
        self.engine = Engine(
            store=self.store,
            settings=settings,
            tools=self.tools,
            knowledge=self.knowledge,
            backends=self.backends,
            sleep=sleep,
            deadline=deadline,
            meter=self.meter,
        )
        self.approvals = Approvals(
            clients=clients,
            store=self.store,
            admins=settings.admin_ids,
            timeout=settings.approval_timeout,
            tools=self.tools,
            sleep=sleep,
        )
        self.slack_files = SlackFiles(
            client=self.slack,
            api_url=settings.slack_api_url,
            max_bytes=settings.max_file_bytes,
            max_concurrent=settings.max_concurrent_downloads,
        )
        # Floors: what Slack publishes for the method's tier (Tier 3 "50+", Tier 4 "100+" a minute).
        self.pacer = Pacer(per_minute=settings.slack_updates_per_minute, floor=50, method="chat.update")
        self.append_pacer = Pacer(per_minute=settings.slack_appends_per_minute, floor=100, method="chat.appendStream")
        self._replica_id = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._model_notice: asyncio.Task[None] | None = None
        observer = TurnObserver(self.metrics)  # metrics and log ids of each turn
        self.people = People(clients)
        self.dispatcher = Dispatcher(
            store=self.store,
            engine=observer.runner(self.engine),
            replies=observer.replies(
                SlackReplies(
                    clients,
                    interval=settings.update_interval,
                    pacer=self.pacer,
                    approvals=self.approvals,
                    mode=settings.stream_mode,
                    append_pacer=self.append_pacer,
                    gate=RateGate(self.store),  # Slack's 429s and each channel's pace, shared by replicas
                )
            ),
            assistants=self.assistants,
            max_concurrent_turns=settings.max_concurrent_turns,
            lock_lease=settings.lock_lease,
            admins=settings.admin_ids,
            limits=Limits(
                message_chars=settings.max_message_chars,
                queue=QueueCaps(messages=settings.max_queued_messages, bytes=settings.max_queued_bytes),
            ),
            notices=SlackNotices(clients),
            names=self.people,
            meter=self.meter,
        )
        # One workspace: who the bot is, from start-up's auth.test; many: each workspace's installation.
        self.identity = None if self.oauth else Identity(self.slack, bot_token=_secret(settings.slack_bot_token))
        self.bolt = bolt_app.build(client=self.slack, oauth=self.oauth, identity=self.identity)
        deps = SurfaceDeps(
            settings=settings,
            dispatcher=self.dispatcher,
            people=self.people,
            store=self.store,
            assistants=self.assistants,
            tools=self.tools,
            tool_backend=self.engine,
            approvals=self.approvals,
            knowledge=self.knowledge,
            slack_files=self.slack_files,
            ledger=self.ledger,
            cleaner=self.janitor,
        )
        log_ids.register(self.bolt)
        replay.register(self.bolt, self.store)
        mentions.register(self.bolt, deps)
        messages.register(self.bolt, deps)
        housekeeping.register(self.bolt, deps)
        approvals.register(self.bolt, deps)
        commands.register(self.bolt, deps, {**operating.SUBCOMMANDS, "feedback": feedback.command})
        feedback.register(self.bolt, deps)
        stop.register(self.bolt, deps)
        # With OAuth, uninstalling also drops the workspace's installation (Bolt's built-in listeners).
        operating.register(self.bolt, deps, installations=self.oauth is not None)
        tool_commands.register(self.bolt, deps)
        agent_view.register(self.bolt, deps)
        shortcuts.register(self.bolt, deps)
        home.register(self.bolt, deps)
        # Built in start(): the Socket Mode client needs the running event loop.
        self.transport: Transport | None = None
        self.metrics_listener = (
            MetricsListener(self.metrics, host=settings.host, port=settings.metrics_port, healthy=self.store.ping)
            if settings.metrics_port is not None
            else None
        )

    async def start(self) -> None:
        # One HTTP session for every Slack call (a session per call costs a new connection each time).
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.slack.session = session
        try:
            if self.identity is not None:  # with OAuth, each workspace's token is checked on its events
                await self.identity.check()
            await self.backends.resolve()  # `auto` asks each model server what it keeps
        except SettingsError:
            await session.close()
            raise
        await self._beat()
        self._heartbeat = asyncio.create_task(self._keep_beating(), name="replica heartbeat")
        # Turns whose replica died (or this one, before a restart) are taken over and answered.
        self._sweeper = asyncio.create_task(self.dispatcher.keep_sweeping(), name="sweeper")
        on_openai = {n for n in self.assistants.names() if self.backends.of_channel(n)[1].client is self.openai}
        self._model_notice = asyncio.create_task(warn_retiring_models(self.openai, self.assistants, only=on_openai))
        if self.metrics_listener is not None:
            await self.metrics_listener.start()
        if self.settings.cleanup_interval > 0:
            self._janitor_task = asyncio.create_task(self.janitor.run_forever(), name="janitor")
        self.transport = transport_for(
            self.settings,
            self.bolt,
            healthy=self.store.ping,
            deadline=self._http_deadline,
            call_later=self._call_later,
            metrics=self.metrics,
        )
        await self.transport.start()

    async def _beat(self) -> None:
        # Replicas share each workspace's Slack edit budget: each paces to its part.
        replicas = await self.store.heartbeat(self._replica_id, HEARTBEAT_TTL)
        self.pacer.share(replicas)
        self.append_pacer.share(replicas)

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_TTL / 3)
            try:
                await self._beat()
            except Exception:  # a missed beat only delays re-sharing the budget
                log.warning("replica heartbeat failed", exc_info=True)

    async def stop(self) -> None:
        """Stop taking events, finish (or close with a note) in-flight replies, release clients."""
        if self.transport is not None:
            await self.transport.stop()
        if self.metrics_listener is not None:
            await self.metrics_listener.stop()
        for task in (self._heartbeat, self._sweeper, self._model_notice):
            if task is not None:
                task.cancel()
        if self._janitor_task is not None:
            self._janitor_task.cancel()
            await asyncio.gather(self._janitor_task, return_exceptions=True)
        await self.dispatcher.shutdown(self.settings.shutdown_grace, deadline=self._deadline)
        await self.store.close()
        await self.engine.close()
        await self.backends.close()
        await self.slack_files.close()
        if self.slack.session is not None:
            await self.slack.session.close()
        await self.openai.close()
        if self.oauth:
            await self.oauth.close()

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            if await self._start_unless(stop):
                await stop.wait()
        except BaseException:
            await self.stop()  # a start that failed leaves nothing open
            raise
        log.info("shutting down: %d thread(s) in flight", self.dispatcher.in_flight)
        await self.stop()

    async def _start_unless(self, stop: asyncio.Event) -> bool:
        """Start, unless a signal comes first (False): a start still waiting on Slack is abandoned."""
        starting = asyncio.create_task(self.start(), name="start")
        signalled = asyncio.create_task(stop.wait(), name="signal")
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        if starting.done():
            starting.result()  # raises what start() raised
            return True
        log.info("signalled while starting")
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return False


def _operations(
    settings: Settings,
    store: Store,
    slack: SlackClients,
    backends: Backends,
    sleep: Callable[[float], Awaitable[None]],
) -> tuple[Ledger, Meter, Janitor]:
    """Usage, budgets and clean-up (README "Operating"): the ledger beside the store, the
    meter that records and enforces, the janitor (deleting each thing at the model server
    it was made at); budget alerts go to the admins by DM."""
    ledger = open_ledger(store)
    budgets = Budgets(settings.token_budget_workspace, settings.token_budget_channel, settings.token_budget_user)
    meter = Meter(ledger, budgets, notify=operating.admin_notifier(slack, settings.admin_ids))
    janitor = Janitor(store=store, ledger=ledger, settings=settings, backends=backends, sleep=sleep)
    return ledger, meter, janitor


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None
