"""One turn: the queued user messages of a thread become a streamed response
(Responses API) that carries the thread's history the way its backend keeps it
(engine/state.py: a conversation, a response chain, or items the bot keeps). When
the response ends with function calls, they run and their outputs go back, round
after round, until the model answers in text."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import openai

from assist_bot.assistants import Assistant
from assist_bot.engine.arguments import arguments_from_text
from assist_bot.engine.backends import Backend, Backends
from assist_bot.engine.knowledge import Knowledge
from assist_bot.engine.openai_errors import (
    RETRYABLE,
    STREAM_BROKEN,
    is_conversation_locked,
    is_missing_vector_store,
    to_turn_error,
)
from assist_bot.engine.outputs import citations, generated_files
from assist_bot.engine.request import drop_file_search, identity, request_body, user_input
from assist_bot.engine.sse import sse_events
from assist_bot.engine.state import TurnState, context_plan, open_turn
from assist_bot.engine.stream import Round, Usage, translate
from assist_bot.engine.tooling import Approver, SideEffectBudget, ToolRun, run_calls
from assist_bot.errors import TurnError
from assist_bot.events import Done, Failed, TextDelta, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.settings import Settings
from assist_bot.store import ChannelKey, Store, ThreadKey
from assist_bot.store.base import TurnSnapshot
from assist_bot.tools import Caller, Tool, ToolContext, ToolRegistry
from assist_bot.usage import Meter

log = logging.getLogger(__name__)

# conversation_locked: another response is still finishing on OpenAI's side.
LOCKED_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)
# A response that failed before showing anything is asked once more, after this pause.
RETRY_BACKOFF = 1.0


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        tools: ToolRegistry,
        knowledge: Knowledge,
        backends: Backends,
        http: aiohttp.ClientSession | None = None,
        locked_backoff: Sequence[float] = LOCKED_BACKOFF,
        retry_backoff: float = RETRY_BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        deadline: Callable[[float], asyncio.Timeout] = asyncio.timeout,
        meter: Meter | None = None,
    ) -> None:
        self._meter = meter  # budgets and usage of the one model call outside turns (tool_arguments)
        self._backends = backends
        self._store = store
        self._settings = settings
        self._tools = tools
        self.knowledge = knowledge
        self._http = http
        self._locked_backoff = tuple(locked_backoff)
        self._retry_backoff = retry_backoff
        # Every wait between attempts, and the response time-out, go through these, so tests
        # can see them without waiting them out.
        self.sleep = sleep
        self.deadline = deadline

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    # -- for slash commands: the same tools, run by people ------------------------------
    def tool_context(self, *, team: str, channel: str, user: str, thread_ts: str = "") -> ToolContext[Any]:
        # No settings here: each tool gets its own (Tool.invoke), never the bot's credentials.
        return ToolContext(http=self._session(), team=team, channel=channel, user=user, thread_ts=thread_ts)

    async def tool_arguments(self, tool: Tool, text: str, *, caller: Caller) -> dict[str, Any]:
        """The model fills in the arguments: the channel's own model, on its own server (a
        channel on a model of its own never has its words sent elsewhere), on the caller's
        budgets and counted in their usage (TurnError "budget_<scope>" when one is used up)."""
        channel = ChannelKey(caller.team, caller.channel)
        assistant, backend = self._backends.of_channel(
            (await self._store.get_channel_settings(channel)).get("assistant")
        )
        return await arguments_from_text(
            backend.client,
            model=assistant.model,
            tool=tool,
            text=text,
            caller=caller,
            assistant=assistant.name,
            meter=self._meter,
        )

    # -- a turn ------------------------------------------------------------------------
    async def run(
        self,
        *,
        thread: ThreadKey,
        messages: Sequence[Inbound],
        assistant: Assistant,
        approve: Approver,
        state: TurnSnapshot,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Stream one turn. It ends in exactly one way, with a Done or a Failed event: a
        failure the user should hear about (TurnError) becomes Failed here, at the
        engine's boundary, so callers never see it raised."""
        turn = self._turn(thread=thread, messages=messages, assistant=assistant, approve=approve, state=state)
        async with contextlib.aclosing(turn):
            try:
                async for event in turn:
                    yield event
                    if isinstance(event, (Done, Failed)):
                        return
            except TurnError as exc:
                yield Failed(exc.kind, exc.detail)
                return
        yield Failed("unexpected", "the turn ended without a final event")

    async def _turn(
        self,
        *,
        thread: ThreadKey,
        messages: Sequence[Inbound],
        assistant: Assistant,
        approve: Approver,
        state: TurnSnapshot,
    ) -> AsyncGenerator[TurnEvent, None]:
        """The turn itself; raises TurnError for failures the user should hear about."""
        last = messages[-1]
        # Only what everyone in the batch may use: one person's rights are not lent to another.
        speakers = [m.user for m in messages]
        functions = {
            t.name: t
            for t in self._tools.for_turn(
                assistant.tools, users=speakers, channel=last.channel, team=last.team, admins=self._settings.admin_ids
            )
        }
        ctx = self.tool_context(team=last.team, channel=last.channel, user=last.user, thread_ts=thread.thread_ts)
        backend = self._backends.for_assistant(assistant)
        plan = context_plan(assistant, backend)
        # What the store knows of the thread came with the turn (one round trip, in the dispatcher).
        turn = open_turn(
            backend.state,
            client=backend.client,
            thread=thread,
            server_state=state.server_state,
            history=state.history,
            budget=plan.history_budget,
        )
        request = request_body(assistant, backend, functions.values(), state)
        request |= plan.fields | identity(thread, last.user)
        usage = Usage()
        try:
            tools = ToolRun(
                tools=functions,
                ctx=ctx,
                approve=approve,
                who=tuple(dict.fromkeys(speakers)),
                budget=SideEffectBudget(self._settings.max_side_effect_calls),
                deadline=self.deadline,
            )
            rounds = self._rounds(thread, backend, turn, request, user_input(messages), tools, usage)
            async for event in rounds:
                if isinstance(event, (Done, Failed)):  # the consumer may stop reading at a final event
                    _log_usage(thread, assistant, usage)
                yield event
        except TurnError:
            _log_usage(thread, assistant, usage)
            turn.end(completed=False)
            for change in turn.changes():
                yield change
            raise

    async def _rounds(
        self,
        thread: ThreadKey,
        backend: Backend,
        turn: TurnState,
        request: dict[str, Any],
        items: list[dict[str, Any]],
        tools: ToolRun,
        usage: Usage,
    ) -> AsyncIterator[TurnEvent]:
        """Response after response, running the function calls each asks for in between."""
        await turn.begin()
        texts: list[str] = []
        cited: list[Any] = []
        for _ in range(self._settings.tool_max_rounds):
            this = Round(usage=usage)
            if texts:
                yield TextDelta("\n\n")  # keep what the model said before a tool call apart
            turn.next_round(items)
            async for event in self._respond(thread, backend, turn, request, this):
                if isinstance(event, Failed):
                    turn.end(completed=False)
                    for change in turn.changes():
                        yield change
                yield event
                if isinstance(event, Failed):
                    return
            turn.answered(this)
            if this.text:
                texts.append("".join(this.text))
            cited.extend(this.annotations)
            async for output in generated_files(
                backend.client, self._store, thread, annotations=this.annotations, containers=this.containers
            ):
                yield output
            if not this.calls:
                turn.end(completed=True)
                for change in turn.changes():
                    yield change
                sources = await citations(self.knowledge, thread, cited)
                yield Done("\n\n".join(texts), this.response_id, sources)
                return
            items = await run_calls(this.calls, tools)
        raise TurnError("tool_rounds", f"more than {self._settings.tool_max_rounds} rounds of tool calls")

    async def _respond(
        self, thread: ThreadKey, backend: Backend, turn: TurnState, request: dict[str, Any], into: Round
    ) -> AsyncIterator[TurnEvent]:
        """One response. One that fails before the user saw any of it (a dropped stream, a
        server error, a rate limit) is asked once more after a pause; one that fails later
        keeps its partial text, and the failure names the cause."""
        for retry in (True, False):
            failure: Failed | TurnError | None = None
            try:
                # aclosing: leaving early must close the HTTP response now, not at garbage collection.
                async with contextlib.aclosing(self._respond_once(thread, backend, turn, request, into)) as events:
                    async for event in events:
                        if isinstance(event, Failed) and retry and _retryable(event.kind, into):
                            failure = event
                            break
                        yield event
            except TurnError as exc:
                if not (retry and _retryable(exc.kind, into)):
                    raise
                failure = exc
            if failure is None:
                return
            log.info("response failed before any output (%s); asking once more", failure.kind)
            await self.sleep(self._retry_backoff)
        raise AssertionError("unreachable")

    async def _respond_once(
        self, thread: ThreadKey, backend: Backend, turn: TurnState, request: dict[str, Any], into: Round
    ) -> AsyncGenerator[TurnEvent, None]:
        """One response, bounded by ASSIST_BOT_RESPONSE_TIMEOUT (approvals and tool
        runs between responses are bounded by their own time-outs)."""
        try:
            async with self.deadline(self._settings.response_timeout):
                async with await self._create_or_renew(thread, backend, turn, request) as response:
                    for change in turn.changes():  # a conversation made on the way
                        yield change
                    async for event in translate(sse_events(response.iter_lines()), into):
                        yield event
        except TimeoutError:
            raise TurnError("timeout", "no complete response in time") from None
        except openai.OpenAIError as exc:
            raise to_turn_error(exc) from exc
        except STREAM_BROKEN as exc:
            raise TurnError("stream_cut", type(exc).__name__) from exc

    async def _create_or_renew(
        self, thread: ThreadKey, backend: Backend, turn: TurnState, request: dict[str, Any]
    ) -> Any:
        """Create the response, repairing what expired on the server on the way: the thread's
        state (see TurnState.repair), or the channel's vector store (answer without it).
        `request` is the turn's and is changed in place, so later rounds see the repair."""
        for _ in range(3):
            try:
                return await self._create(backend.client, {**request, **turn.fields()})
            except (openai.NotFoundError, openai.BadRequestError) as exc:
                if is_missing_vector_store(exc) and drop_file_search(request):
                    await self.knowledge.reset(ChannelKey(thread.team, thread.channel), backend.server)
                elif not await turn.repair(exc):
                    raise
        return await self._create(backend.client, {**request, **turn.fields()})

    async def _create(self, client: openai.AsyncOpenAI, request: dict[str, Any]) -> Any:
        """An entered raw streaming response (errors surface here, before any event)."""
        # The input goes as extra_body, past the SDK's typed transform: that walks every item
        # (about 0.1 ms each: 20 ms a turn for a 100-turn local history, most of the bot's CPU)
        # and changes nothing in the plain JSON items we build.
        params = {key: value for key, value in request.items() if key != "input"}
        for delay in (*self._locked_backoff, None):
            try:
                return await _entered(
                    client.responses.with_streaming_response.create(**params, extra_body={"input": request["input"]})
                )
            except openai.BadRequestError as exc:
                if not is_conversation_locked(exc) or delay is None:
                    raise
                log.info("conversation %s is locked; retrying in %.2fs", request.get("conversation"), delay)
                await self.sleep(delay)
        raise AssertionError("unreachable")


class _Entered:
    """A response context manager that was entered already (to see its HTTP status at
    once, for the conversation_locked retry), to be used in `async with` once."""

    def __init__(self, manager: Any, response: Any) -> None:
        self._manager = manager
        self._response = response

    async def __aenter__(self) -> Any:
        return self._response

    async def __aexit__(self, *exc: Any) -> None:
        await self._manager.__aexit__(*exc)


async def _entered(manager: Any) -> _Entered:
    return _Entered(manager, await manager.__aenter__())


def _retryable(kind: str, into: Round) -> bool:
    return kind in RETRYABLE and not into.produced


def _log_usage(thread: ThreadKey, assistant: Assistant, usage: Usage) -> None:
    # Counts only: never the messages' content.
    log.info(
        "usage team=%s channel=%s assistant=%s input_tokens=%d cached_tokens=%d output_tokens=%d",
        thread.team,
        thread.channel,
        assistant.name,
        usage.input_tokens,
        usage.cached_tokens,
        usage.output_tokens,
    )
