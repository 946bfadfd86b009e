"""Surface: consent for side-effect tools.

The turn that wants to run e.g. send_email posts a message with the exact
arguments and Approve / Decline buttons, then waits. The click may reach any
replica, so the decision goes through the store (decided once), which wakes the
waiting side at once, wherever it runs (no polling). No answer in time counts as
declined.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision
from assist_bot.slack.clients import SlackClients
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.store import Store
from assist_bot.tools import Caller, ToolRegistry

if TYPE_CHECKING:
    from assist_bot.slack.deps import ApprovalDeps  # deps.py names Approvals: import only for the type

log = logging.getLogger(__name__)

APPROVE = "assist_approve"
DECLINE = "assist_decline"
# A value longer than this is attached as a file (a section holds 3,000 characters).
LONG_VALUE = 2800


class Approvals:
    def __init__(
        self,
        *,
        clients: SlackClients,
        store: Store,
        admins: frozenset[str],
        timeout: float,
        tools: ToolRegistry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clients = clients  # the prompt goes out with its workspace's own token
        self._store = store
        self._admins = admins
        self._timeout = timeout
        self._tools = tools or ToolRegistry()
        self._sleep = sleep  # the time-out's clock (tests pass one they control)

    async def ask(self, request: ApprovalRequest, *, team: str, channel: str, thread_ts: str | None) -> Decision:
        approval_id = uuid.uuid4().hex
        requesters = list(request.requesters or (request.requester,))
        tool = self._tools.get(request.tool)
        self_approval = tool.self_approval if tool is not None else True
        text = texts.approval_question(requesters, request.tool, self_approval=self_approval)
        shown = _in_schema_order(request.arguments, tool.schema() if tool else {})
        client = await self._clients.for_team(team)
        if not await self._attach_long_values(client, request.tool, shown, channel=channel, thread_ts=thread_ts):
            # Never ask about what the approver cannot see in full.
            return Decision(approved=False)
        record = {
            "requester": request.requester,
            "requesters": requesters,
            "tool": request.tool,
            "channel": channel,
            "ts": None,  # known once the prompt is posted
            "arguments": shown,
        }
        # Stored before the prompt goes out: a click that comes at once must find it.
        await self._store.put_approval(team, approval_id, record)
        try:
            posted = await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=text,
                blocks=_question_blocks(approval_id, text, request.tool, shown),
            )
        except BaseException:
            # No prompt, so nobody can answer: close the approval rather than leave it open.
            await self._store.decide_approval(team, approval_id, {"approved": False, "settled": True})
            raise
        record["ts"] = posted["ts"]
        await self._store.put_approval(team, approval_id, record)  # keeps a decision already made
        return await self._wait(team, approval_id, record)

    async def _wait(self, team: str, approval_id: str, record: dict[str, Any]) -> Decision:
        decided = await self._decision_within_timeout(team, approval_id)
        if decided is None:
            if await self._store.decide_approval(team, approval_id, {"approved": False, "timed_out": True}):
                await self._settle(team, record, texts.approval_timed_out(record["tool"]))
                return Decision(approved=False, timed_out=True)
            current = await self._store.get_approval(team, approval_id)  # decided at the last moment
            if not current or "decision" not in current:
                return Decision(approved=False, timed_out=True)
            decided = current["decision"]
        if not decided.get("settled", True):
            # Clicked before the prompt's ts was stored: the clicker could not update the prompt.
            await self._settle(team, record, _outcome(record["tool"], decided))
        return _decision(decided)

    async def _decision_within_timeout(self, team: str, approval_id: str) -> dict[str, Any] | None:
        """The decision, or None when the time-out came first (or the approval is gone)."""
        waiting = asyncio.ensure_future(self._store.wait_for_decision(team, approval_id))
        timer = asyncio.ensure_future(self._sleep(self._timeout))
        try:
            await asyncio.wait({waiting, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiting, timer):
                task.cancel()
            await asyncio.gather(waiting, timer, return_exceptions=True)
        if waiting.cancelled():
            return None
        return waiting.result()  # a store error surfaces here, to the turn's boundary

    async def answer(self, *, team: str, approval_id: str, user: str, approved: bool) -> str | None:
        """A click. Returns a note for the clicker alone, or None when it took effect."""
        record = await self._store.get_approval(team, approval_id)
        if record is None:
            return texts.APPROVAL_EXPIRED
        if "decision" in record:
            return texts.APPROVAL_ALREADY_ANSWERED
        refusal = self._refusal(team, record, user)
        if refusal:
            return refusal
        # Without the prompt's ts (posted a moment ago, not yet stored) the asking side settles it.
        settled = record.get("ts") is not None
        decision = {"approved": approved, "by": user, "settled": settled}
        if not await self._store.decide_approval(team, approval_id, decision):
            return texts.APPROVAL_ALREADY_ANSWERED
        if settled:
            await self._settle(team, record, _outcome(record["tool"], decision))
        return None

    def _refusal(self, team: str, record: dict[str, Any], user: str) -> str | None:
        """Why `user` may not answer, or None. An admin always may. Otherwise the approver
        must be allowed to use the tool here, and be allowed for every requester: each of
        them themselves (a tool that allows self-approval), or none of them (one that
        needs a second person)."""
        if user in self._admins:
            return None
        requesters = list(record.get("requesters") or [record["requester"]])
        tool = self._tools.get(record["tool"])
        if tool is None or not tool.allowed(Caller(team=team, channel=record["channel"], user=user), self._admins):
            return texts.approval_not_yours(requesters, self_approval=True)
        if tool.self_approval:
            return None if set(requesters) == {user} else texts.approval_not_yours(requesters, self_approval=True)
        return None if user not in requesters else texts.approval_not_yours(requesters, self_approval=False)

    async def _attach_long_values(
        self, client: AsyncWebClient, tool: str, arguments: dict[str, Any], *, channel: str, thread_ts: str | None
    ) -> bool:
        """Post each value too long for the prompt as a file, just before the prompt."""
        for name, value in arguments.items():
            shown = _as_text(value)
            if len(shown) <= LONG_VALUE:
                continue
            try:
                await client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread_ts,
                    content=shown,
                    filename=_attachment_name(tool, name),
                    title=f"{tool}: {name} in full ({len(shown):,} characters)",
                )
            except SlackApiError as exc:
                log.warning("could not attach %s of %s: %s", name, tool, exc.response.get("error"))
                return False
        return True

    async def _settle(self, team: str, record: dict[str, Any], outcome: str) -> None:
        """Replace the buttons with who decided, so nobody clicks twice."""
        try:
            client = await self._clients.for_team(team)
            await client.chat_update(
                channel=record["channel"],
                ts=record["ts"],
                text=outcome,
                blocks=_settled_blocks(outcome, record["tool"], record["arguments"]),
            )
        except SlackApiError as exc:
            log.warning("could not update the approval message: %s", exc.response.get("error"))


def _outcome(tool: str, decision: dict[str, Any]) -> str:
    return texts.approval_outcome(tool, approved=bool(decision.get("approved")), by=decision.get("by", ""))


def _decision(raw: dict[str, Any]) -> Decision:
    return Decision(approved=bool(raw.get("approved")), by=raw.get("by", ""), timed_out=bool(raw.get("timed_out")))


def _in_schema_order(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The tool's own order (to, subject, body), not the model's: short fields come first."""
    order = list(schema.get("properties", {}))
    known = {name: arguments[name] for name in order if name in arguments}
    return {**known, **{k: v for k, v in arguments.items() if k not in known}}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _attachment_name(tool: str, name: str) -> str:
    return f"{tool}-{name}.txt"


def _arguments_blocks(tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field in full, as plain text (no mrkdwn: nothing can ping, link or hide);
    a value too long for a block is attached as a file and named here."""
    blocks = []
    for name, value in arguments.items():
        shown = _as_text(value)
        if len(shown) > LONG_VALUE:
            line = f"{name}: {len(shown):,} characters, attached in full above as {_attachment_name(tool, name)}"
        else:
            line = f"{name}:{chr(10) if chr(10) in shown else ' '}{shown}"
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": line, "emoji": False}})
    return blocks


def _question_blocks(approval_id: str, text: str, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        *_arguments_blocks(tool, arguments),
        {
            "type": "actions",
            "block_id": "assist_approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "value": approval_id,
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "action_id": DECLINE,
                    "style": "danger",
                    "value": approval_id,
                    "text": {"type": "plain_text", "text": "Decline"},
                },
            ],
        },
    ]


def _settled_blocks(outcome: str, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": outcome}}, *_arguments_blocks(tool, arguments)]


def register(app: AsyncApp, deps: ApprovalDeps) -> None:
    approvals = deps.approvals

    async def on_click(ack, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user = body["user"]["id"]
        team = workspace(context)
        if team is None or not valid_ids(user):
            return
        note = await approvals.answer(
            team=team,
            approval_id=action["value"],
            user=user,
            approved=action["action_id"] == APPROVE,
        )
        if note:
            channel = (body.get("channel") or {}).get("id")
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=note)

    app.action(APPROVE)(on_click)
    app.action(DECLINE)(on_click)
