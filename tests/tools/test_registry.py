"""The registry: names, slash commands, allowlists and the tools offered in a turn."""

from __future__ import annotations

import pytest

from assist_bot.tools import DuplicateToolError, ToolRegistry, make_tool

pytestmark = pytest.mark.timeout(10)


def lookup(term: str) -> str:
    """Look a term up."""
    return term


def payroll(month: int) -> str:
    """Payroll figures."""
    return str(month)


def deploy(service: str) -> str:
    """Deploy a service."""
    return service


ADMINS = frozenset({"UADMIN"})


@pytest.fixture
def reg() -> ToolRegistry:
    return ToolRegistry(
        [
            make_tool(lookup),
            make_tool(payroll, allow_users={"UHR"}),
            make_tool(deploy, allow_users={"UOPS"}, allow_channels={"COPS"}, slash_command="/ship"),
        ]
    )


def test_lookups(reg):
    assert reg.names() == ["lookup", "payroll", "deploy"]
    assert [t.name for t in reg.all()] == reg.names()
    assert reg.get("payroll").name == "payroll"
    assert reg.get("nope") is None
    assert reg.by_slash_command("/ship").name == "deploy"
    assert reg.by_slash_command("lookup").name == "lookup"
    assert reg.by_slash_command("/deploy") is None


def test_allowlists():
    tool = make_tool(deploy, allow_users={"UOPS"}, allow_channels={"COPS"})
    assert tool.allowed("UOPS", "COPS", ADMINS)
    assert not tool.allowed("UOPS", "CGENERAL", ADMINS)  # both lists must allow
    assert not tool.allowed("UDEV", "COPS", ADMINS)
    assert tool.allowed("UADMIN", "CGENERAL", ADMINS)  # admins always may
    assert make_tool(lookup).allowed("UANY", "CANY", frozenset())


def test_for_turn_keeps_listed_and_allowed_tools(reg):
    names = ["payroll", "lookup", "ghost", "deploy", "lookup"]
    assert [t.name for t in reg.for_turn(names, user="UDEV", channel="C1", admins=ADMINS)] == ["lookup"]
    assert [t.name for t in reg.for_turn(names, user="UHR", channel="C1", admins=ADMINS)] == ["payroll", "lookup"]
    assert [t.name for t in reg.for_turn(names, user="UOPS", channel="COPS", admins=ADMINS)] == ["lookup", "deploy"]
    assert [t.name for t in reg.for_turn(names, user="UADMIN", channel="C1", admins=ADMINS)] == [
        "payroll",
        "lookup",
        "deploy",
    ]
    assert reg.for_turn([], user="UADMIN", channel="C1", admins=ADMINS) == []


def test_duplicates_are_refused(reg):
    with pytest.raises(DuplicateToolError, match="tool name 'lookup' is declared twice"):
        reg.register(make_tool(deploy, name="lookup", slash_command="/other"))
    with pytest.raises(DuplicateToolError, match="slash command /ship is used by both deploy"):
        reg.register(make_tool(lookup, name="ship_it", slash_command="/ship"))
