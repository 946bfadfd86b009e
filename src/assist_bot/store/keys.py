"""Storage key names: every key of the store interface is named here, so the layout lives in one place.

The names carry two guarantees the twins rely on: keys used together in one atomic
operation share a Redis Cluster hash slot, and team and channel ids are checked to be
Slack ids before they reach a key or a key pattern, so one workspace can never reach
another's. NAMESPACE also prefixes the keys of the usage ledger and of OAuth installs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base.py builds its default Keys() from here: only the types go back
    from assist_bot.store.base import ChannelKey, ThreadKey

NAMESPACE = "assist-bot"


# What a Slack team, enterprise, channel or user id looks like (T0123ABC, C0123ABC, U0123ABC…).
# Nothing else may reach a key: `*`, `?` or `[` in a key pattern would match other teams' keys.
_SLACK_ID = re.compile(r"[A-Z0-9]{1,64}")
# What a Slack Web API method name looks like (chat.appendStream): no brace can end a hash tag early.
_SLACK_METHOD = re.compile(r"[a-z][a-zA-Z.]{0,63}")


def is_slack_id(value: object) -> bool:
    return isinstance(value, str) and _SLACK_ID.fullmatch(value) is not None


class InvalidIdError(ValueError):
    """A team or channel id that is not a Slack id reached the key builder."""


def slack_id(value: str) -> str:
    """The id itself, once checked to be a Slack id: what every key and key pattern is built from."""
    if not is_slack_id(value):
        raise InvalidIdError(f"not a Slack id: {value[:40]!r}")
    return value


def _method(value: str) -> str:
    if _SLACK_METHOD.fullmatch(value) is None:
        raise InvalidIdError(f"not a Slack method: {value[:40]!r}")
    return value


class Keys:
    """Builds every storage key, so the layout lives in one place.

    Every key starts with the namespace, then a Redis Cluster hash tag — the part in
    braces, which alone decides the key's slot — naming the thing the key belongs to,
    then the kind of data: `assist-bot:{T1:C1:1700000000.1}:conv`. Keys used together
    in one MULTI block or Lua script share their tag (all of a thread's, all of a
    channel's, an approval's), so each such operation touches one slot; different
    threads spread over the cluster. The tag starts with the team id: two workspaces
    can never read each other's state, and `SCAN assist-bot:{T123:*` finds a team's.
    Team and channel ids are checked to be Slack ids (InvalidIdError otherwise),
    so no key and no pattern is ever built from anything else.
    """

    def __init__(self, namespace: str = NAMESPACE) -> None:
        self.namespace = namespace

    def _thread(self, kind: str, thread: ThreadKey) -> str:
        return f"{self.namespace}:{{{slack_id(thread.team)}:{slack_id(thread.channel)}:{thread.thread_ts}}}:{kind}"

    def _channel(self, kind: str, channel: ChannelKey) -> str:
        return f"{self.namespace}:{{{slack_id(channel.team)}:{slack_id(channel.channel)}}}:{kind}"

    def conversation(self, thread: ThreadKey) -> str:
        """The thread's state on the model server: its conversation id, or (response_chain)
        its last response id."""
        return self._thread("conv", thread)

    def history(self, thread: ThreadKey) -> str:
        """The items of a thread the bot keeps itself (ASSIST_BOT_STATE=local), oldest first."""
        return self._thread("hist", thread)

    def channel_threads(self, channel: ChannelKey) -> str:
        """The channel's index of its threads with a conversation, history or `known` marker
        (thread_ts → when the entry lapses), in the channel's slot: what a reset reads."""
        return self._channel("threads", channel)

    def channel_thread_keys(self, channel: ChannelKey) -> str:
        """A SCAN pattern matching every key of every thread in a channel (a reset's fallback
        for keys written before the index)."""
        return f"{self.namespace}:{{{slack_id(channel.team)}:{slack_id(channel.channel)}:*}}:*"

    @staticmethod
    def thread_key_kind(key: str) -> str:
        """The kind of a thread's key, after its hash tag: `conv`, `known`, `seen:msg:…`."""
        return key.rsplit("}:", 1)[-1]

    def threads_indexed_since(self) -> str:
        """When this deployment's first reset ran with channels' indexes of threads (see
        RedisStore.delete_channel_conversations): not per team, like the replicas."""
        return f"{self.namespace}:threads-indexed-since"

    def known(self, thread: ThreadKey) -> str:
        return self._thread("known", thread)

    def lock(self, thread: ThreadKey) -> str:
        return self._thread("lock", thread)

    def pending(self, thread: ThreadKey) -> str:
        return self._thread("pending", thread)

    def message_seen(self, thread: ThreadKey, token: str) -> str:
        """A message's dedupe token, in its thread's slot: enqueue claims it in the same
        script that queues the message and takes the thread's lock."""
        return self._thread(f"seen:{token}", thread)

    def running(self, thread: ThreadKey) -> str:
        """The answer streaming in a thread (who asked) and, once asked, who stopped it."""
        return self._thread("running", thread)

    def seen(self, team: str, token: str) -> str:
        return f"{self.namespace}:{{{slack_id(team)}:{token}}}:seen"

    def approval(self, team: str, approval_id: str) -> str:
        return f"{self.namespace}:{{{slack_id(team)}:{approval_id}}}:approval"

    def thread_files(self, thread: ThreadKey) -> str:
        return self._thread("tfiles", thread)

    def inflight(self, thread: ThreadKey) -> str:
        """The messages the running turn took: put back for the next turn if its owner dies."""
        return self._thread("inflight", thread)

    def turn(self, thread: ThreadKey) -> str:
        """The running turn's reply message (channel, ts), so that whoever takes over can close it."""
        return self._thread("turn", thread)

    def turns(self) -> str:
        """Threads with a running turn, scored by when their lease ends: where the sweeper looks."""
        return f"{self.namespace}:turns"

    def sweeper(self) -> str:
        """The lease of the one replica that sweeps at a time."""
        return f"{self.namespace}:sweeper"

    def knowledge(self, channel: ChannelKey) -> str:
        return self._channel("knowledge", channel)

    def knowledge_holders(self, team: str, slack_file_id: str) -> str:
        """The set of channels whose knowledge holds a Slack file (one file may be shared in many)."""
        return f"{self.namespace}:{{{slack_id(team)}:{slack_file_id}}}:kchannels"

    def knowledge_owner(self, team: str, slack_file_id: str) -> str:
        """Older versions kept one owner channel per file, as a string: still read, then moved
        into the set. Named as those versions named it (before hash tags), so it is found."""
        return f"{self.namespace}:{slack_id(team)}:kfile:{slack_file_id}"

    def replicas(self) -> str:
        # Not per team: the replicas serve every workspace.
        return f"{self.namespace}:replicas"

    def channel(self, channel: ChannelKey) -> str:
        return self._channel("channel", channel)

    def decisions(self) -> str:
        """The pub/sub channel announcing approval decisions (to every replica)."""
        return f"{self.namespace}:decisions"

    def feedback(self, team: str) -> str:
        return f"{self.namespace}:{slack_id(team)}:feedback"

    def _slack_method(self, kind: str, team: str, method: str) -> str:
        # A method's keys in one workspace share a slot: the read before each call of it gets its
        # pause and its lesson in one round trip, and a 429 writes both in one MULTI.
        return f"{self.namespace}:{{{slack_id(team)}:{_method(method)}}}:{kind}"

    def slack_pause(self, team: str, method: str) -> str:
        """Exists while Slack asks the workspace to wait before calling `method` again (429 +
        Retry-After); its TTL is what is left of the wait. (Older versions named it
        `assist-bot:T1:slackpause:<method>`, outside any slot of the team's: a pause lasts seconds,
        so nothing is carried over; during a rolling upgrade old and new replicas pause apart.)"""
        return self._slack_method("slackpause", team, method)

    def slack_lesson(self, team: str, method: str) -> str:
        """What the workspace's last 429 of `method` taught about its limit (a SlackLesson),
        living as long as the lesson holds."""
        return self._slack_method("slacklesson", team, method)

    def post_pace(self, channel: ChannelKey) -> str:
        """When the next message may be posted in the channel (see Store.reserve_post)."""
        return self._channel("postpace", channel)
