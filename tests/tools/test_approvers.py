"""Who may answer a consent prompt: the rules of `Approvals`, for every requester of a turn."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack.approvals import Approvals
from assist_bot.slack.clients import OneWorkspace
from assist_bot.tools import ToolRegistry, make_tool

pytestmark = pytest.mark.timeout(10)


def mail(to: str) -> str:
    """Needs a second person."""
    return to


def note(text: str) -> str:
    """The requester may approve it."""
    return text


def payroll(month: int) -> str:
    """Only HR, and only in the HR channel."""
    return str(month)


@pytest.fixture
def approvals() -> Approvals:
    tools = ToolRegistry(
        [
            make_tool(mail, side_effects=True, self_approval=False),
            make_tool(note, side_effects=True),
            make_tool(payroll, side_effects=True, allow_users={"UHR", "UHR2"}, allow_channels={"CHR"}),
        ]
    )
    # The rules need neither Slack nor the store.
    clients, store = OneWorkspace(AsyncWebClient(token="xoxb-unused")), None
    return Approvals(clients=clients, store=store, admins=frozenset({"UADMIN"}), timeout=1, tools=tools)  # type: ignore[arg-type]


def refusal(approvals: Approvals, tool: str, requesters: list[str], user: str, channel: str = "C1") -> Any:
    record = {"tool": tool, "requester": requesters[-1], "requesters": requesters, "channel": channel}
    return approvals._refusal("T1", record, user)


def test_self_approvable_tool(approvals):
    assert refusal(approvals, "note", ["U1"], "U1") is None
    assert refusal(approvals, "note", ["U1"], "U2") == texts.approval_not_yours(["U1"])
    # A shared request: neither requester may approve for the other, only an admin.
    assert refusal(approvals, "note", ["U1", "U2"], "U1") is not None
    assert refusal(approvals, "note", ["U1", "U2"], "U2") is not None
    assert refusal(approvals, "note", ["U1", "U2"], "UADMIN") is None


def test_a_tool_that_needs_a_second_person(approvals):
    assert refusal(approvals, "mail", ["U1"], "U1") == texts.approval_not_yours(["U1"], self_approval=False)
    assert refusal(approvals, "mail", ["U1"], "U2") is None
    assert refusal(approvals, "mail", ["U1", "U2"], "U2") is not None  # a requester, even if not the last
    assert refusal(approvals, "mail", ["U1", "U2"], "U3") is None
    assert refusal(approvals, "mail", ["U1"], "UADMIN") is None


def test_the_approver_must_be_allowed_to_use_the_tool_here(approvals):
    assert refusal(approvals, "payroll", ["UHR"], "UHR", channel="CHR") is None
    assert refusal(approvals, "payroll", ["UHR"], "UHR", channel="CGENERAL") is not None
    assert refusal(approvals, "payroll", ["UHR", "UDEV"], "UHR", channel="CHR") is not None


def test_an_unknown_tool_is_for_admins_only(approvals):
    assert refusal(approvals, "gone", ["U1"], "U1") is not None
    assert refusal(approvals, "gone", ["U1"], "UADMIN") is None
