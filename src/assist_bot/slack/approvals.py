"""Surface: consent for side-effect tools.

The turn that wants to run e.g. send_email posts a message with the exact
arguments and Approve / Decline buttons, then waits. The click may reach any
replica, so the decision goes through the store (decided once), and the
waiting side polls it. No answer in time counts as declined.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.events import ApprovalRequest, Decision
from assist_bot.slack.normalize import valid_ids, workspace
from assist_bot.store import Store

log = logging.getLogger(__name__)

APPROVE = "assist_approve"
DECLINE = "assist_decline"
POLL_SECONDS = 0.25


class Approvals:
    def __init__(self, *, client: AsyncWebClient, store: Store, admins: frozenset[str], timeout: float) -> None:
        self._client = client
        self._store = store
        self._admins = admins
        self._timeout = timeout

    async def ask(self, request: ApprovalRequest, *, team: str, channel: str, thread_ts: str | None) -> Decision:
        approval_id = uuid.uuid4().hex
        text = texts.approval_question(request.requester, request.tool)
        posted = await self._client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            blocks=_question_blocks(approval_id, text, request.arguments),
        )
        record = {
            "requester": request.requester,
            "tool": request.tool,
            "channel": channel,
            "ts": posted["ts"],
            "arguments": request.arguments,
        }
        await self._store.put_approval(team, approval_id, record)
        return await self._wait(team, approval_id, record)

    async def _wait(self, team: str, approval_id: str, record: dict[str, Any]) -> Decision:
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            current = await self._store.get_approval(team, approval_id)
            if current and "decision" in current:
                return _decision(current["decision"])
            await asyncio.sleep(POLL_SECONDS)
        if await self._store.decide_approval(team, approval_id, {"approved": False, "timed_out": True}):
            await self._settle(record, texts.approval_timed_out(record["tool"]))
            return Decision(approved=False, timed_out=True)
        current = await self._store.get_approval(team, approval_id)  # decided at the last moment
        return _decision(current["decision"]) if current else Decision(approved=False, timed_out=True)

    async def answer(self, *, team: str, approval_id: str, user: str, approved: bool) -> str | None:
        """A click. Returns a note for the clicker alone, or None when it took effect."""
        record = await self._store.get_approval(team, approval_id)
        if record is None:
            return texts.APPROVAL_EXPIRED
        if "decision" in record:
            return texts.APPROVAL_ALREADY_ANSWERED
        if user != record["requester"] and user not in self._admins:
            return texts.approval_not_yours(record["requester"])
        if not await self._store.decide_approval(team, approval_id, {"approved": approved, "by": user}):
            return texts.APPROVAL_ALREADY_ANSWERED
        await self._settle(record, texts.approval_outcome(record["tool"], approved=approved, by=user))
        return None

    async def _settle(self, record: dict[str, Any], outcome: str) -> None:
        """Replace the buttons with who decided, so nobody clicks twice."""
        try:
            await self._client.chat_update(
                channel=record["channel"],
                ts=record["ts"],
                text=outcome,
                blocks=_settled_blocks(outcome, record["arguments"]),
            )
        except SlackApiError as exc:
            log.warning("could not update the approval message: %s", exc.response.get("error"))


def _decision(raw: dict[str, Any]) -> Decision:
    return Decision(approved=bool(raw.get("approved")), by=raw.get("by", ""), timed_out=bool(raw.get("timed_out")))


def _arguments_block(arguments: dict[str, Any]) -> dict[str, Any]:
    shown = json.dumps(arguments, indent=2, ensure_ascii=False)
    if len(shown) > 2900:  # a section's text holds 3,000 characters
        shown = shown[:2900] + "\n…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": f"```{shown}```"}}


def _question_blocks(approval_id: str, text: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        _arguments_block(arguments),
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


def _settled_blocks(outcome: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": outcome}}, _arguments_block(arguments)]


def register(app: AsyncApp, approvals: Approvals) -> None:
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
