"""The registry: names, slash commands, allowlists and the tools offered in a turn."""

from __future__ import annotations

import pytest

from assist_bot.tools import Caller, DuplicateToolError, ToolRegistry, make_tool

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


def who(user: str, channel: str = "C1", team: str = "T1") -> Caller:
    return Caller(team=team, channel=channel, user=user)


def test_allowlists():
    tool = make_tool(deploy, allow_users={"UOPS"}, allow_channels={"COPS"})
    assert tool.allowed(who("UOPS", "COPS"), ADMINS)
    assert not tool.allowed(who("UOPS", "CGENERAL"), ADMINS)  # both lists must allow
    assert not tool.allowed(who("UDEV", "COPS"), ADMINS)
    assert tool.allowed(who("UADMIN", "CGENERAL"), ADMINS)  # admins always may
    assert make_tool(lookup).allowed(who("UANY", "CANY"), frozenset())


def test_allow_rules_may_be_callables_given_the_caller():
    seen: list[Caller] = []

    def ops_team(caller: Caller) -> bool:
        seen.append(caller)
        return caller.team == "TOPS"

    def broken(caller: Caller) -> bool:
        raise RuntimeError("directory is down")

    tool = make_tool(deploy, allow_users=ops_team, allow_channels=lambda c: c.channel.startswith("COPS"))
    assert tool.allowed(who("U1", "COPS-1", "TOPS"), ADMINS)
    assert not tool.allowed(who("U1", "COPS-1", "TDEV"), ADMINS)
    assert not tool.allowed(who("U1", "CGENERAL", "TOPS"), ADMINS)
    assert seen[0] == who("U1", "COPS-1", "TOPS")
    assert not make_tool(deploy, allow_users=broken).allowed(who("U1"), ADMINS)  # a failing rule denies


def test_for_turn_keeps_listed_and_allowed_tools(reg):
    names = ["payroll", "lookup", "ghost", "deploy", "lookup"]

    def offered(*users: str, channel: str = "C1") -> list[str]:
        return [t.name for t in reg.for_turn(names, users=users, channel=channel, team="T1", admins=ADMINS)]

    assert offered("UDEV") == ["lookup"]
    assert offered("UHR") == ["payroll", "lookup"]
    assert offered("UOPS", channel="COPS") == ["lookup", "deploy"]
    assert offered("UADMIN") == ["payroll", "lookup", "deploy"]
    assert reg.for_turn([], users=["UADMIN"], channel="C1", admins=ADMINS) == []


def test_a_batched_turn_gets_only_what_everyone_in_it_may_use(reg):
    # A restricted request batched with an allowed person's "thanks" borrows nothing.
    names = ["payroll", "lookup", "deploy"]

    def offered(*users: str) -> list[str]:
        return [t.name for t in reg.for_turn(names, users=users, channel="COPS", team="T1", admins=ADMINS)]

    assert offered("UHR", "UDEV") == ["lookup"]
    assert offered("UDEV", "UHR") == ["lookup"]
    assert offered("UHR", "UADMIN") == ["payroll", "lookup"]
    assert offered("UOPS", "UADMIN", "UOPS") == ["lookup", "deploy"]
    assert offered() == []


def test_duplicates_are_refused(reg):
    with pytest.raises(DuplicateToolError, match="tool name 'lookup' is declared twice"):
        reg.register(make_tool(deploy, name="lookup", slash_command="/other"))
    with pytest.raises(DuplicateToolError, match="slash command /ship is used by both deploy"):
        reg.register(make_tool(lookup, name="ship_it", slash_command="/ship"))
