"""The bot's shared user-visible texts: thinking, notes, errors. (Slash commands and file
intake keep the texts only they use beside the code that picks them.)"""

from __future__ import annotations

THINKING = "_Thinking…_"
THINKING_STATUS = "is thinking…"

# TurnError.kind → what the user reads at the end of the reply.
FAILURES = {
    "timeout": "⚠️ The assistant took too long to answer, so I stopped waiting. Please try again.",
    "openai_unavailable": "⚠️ The AI service is unavailable right now. Please try again in a moment.",
    "openai_rate_limited": "⚠️ The AI service is busy (rate limited). Please try again in a moment.",
    "openai_rejected": "⚠️ The AI service could not handle this request.",
    "openai_auth": "⚠️ The bot cannot reach the AI service: its API key was refused. An admin needs to check it.",
    "model_failed": "⚠️ The model could not finish this answer.",
    "tool_rounds": "⚠️ The assistant kept calling tools without answering, so I stopped it.",
    "interrupted": "⚠️ The bot was restarting and had to stop this answer. Please ask again.",
    "unexpected": "⚠️ Something went wrong on my side. Please try again.",
    # Why an answer stopped, said under what was written so far.
    "stream_cut": "⚠️ The connection to the AI service broke off, so this answer is incomplete. Please ask again.",
    "openai_quota": "⚠️ The AI service refused this answer: the bot's OpenAI account is out of quota. "
    "An admin needs to check its plan and billing.",
    "context_window": "⚠️ This thread has grown too long for the model. Please start a new thread "
    "(an admin can let this assistant drop or compact old messages instead).",
    "length_limit": "⚠️ The answer stopped here: it reached this assistant's length limit. Ask me to continue.",
    "content_filter": "⚠️ The answer was stopped by the AI service's content filter.",
    "incomplete": "⚠️ The AI service stopped this answer before it was complete.",
    "budget_workspace": "⛔ This workspace has used its monthly token budget, so I did not ask the AI service. "
    "An admin can raise it; it starts afresh next month.",
    "budget_channel": "⛔ This channel has used its monthly token budget, so I did not ask the AI service. "
    "An admin can raise it; it starts afresh next month.",
    "budget_user": "⛔ You have used your monthly token budget, so I did not ask the AI service. "
    "An admin can raise it; it starts afresh next month.",
}

TOOL_ACTIVITY = {
    "file_search": "searching files…",
    "code_interpreter": "running code…",
    "web_search": "searching the web…",
    "image_generation": "drawing an image…",
    "function": "calling {name}…",
    "reasoning": "thinking…",
    "mcp": "asking {name}…",
    "mcp_list_tools": "looking up the tools of {name}…",
}

# Under a reply whose process died mid-answer (another replica, or the same one restarted, closes it).
INTERRUPTED_AGAIN = "⚠️ Interrupted: the bot stopped in the middle of this answer. Answering again below."
INTERRUPTED_GIVEN_UP = "⚠️ Interrupted: the bot stopped in the middle of this answer twice. Please ask again."

WAITING_FOR_APPROVAL = "waiting for approval…"
EMPTY_ANSWER = "_(no answer)_"


def failure(kind: str) -> str:
    if kind.startswith("stopped:"):  # "stopped:<user id>"
        return f"⏹️ Stopped by <@{kind.partition(':')[2]}>."
    return FAILURES.get(kind, FAILURES["unexpected"])


STOP_FINISHED = "This answer has already finished."


def stop_refused(askers: tuple[str, ...]) -> str:
    """To someone who tried to stop an answer that is not theirs (the button, or `stop`)."""
    who = ", ".join(f"<@{a}>" for a in askers) or "the person who asked"
    return f"Only {who} or an admin can stop this answer."


def tool_activity(kind: str, name: str = "") -> str:
    return TOOL_ACTIVITY.get(kind, "working…").format(name=name or kind)


# --- a message over a cap: told to its author only (ephemeral) ----------------------------
def message_refused(reason: str, limit: int, size: int = 0) -> str:
    """Why a message was not taken (dispatch_ports.Refusal's reason, cap and size)."""
    if reason == "too_long":
        return (
            f"⚠️ I did not take your message: it is {size:,} characters long and I take at most {limit:,}. "
            "Please shorten it, or share the text as a file."
        )
    waiting = f"{limit:,} messages" if reason == "messages" else f"{limit // 1000:,} KB of messages"
    return (
        f"⚠️ I did not take your message: {waiting} already wait for my next answer in this thread. "
        "Please send it again once I have answered."
    )


# --- consent for side-effect tools -------------------------------------------------
APPROVAL_EXPIRED = "This request has expired."
APPROVAL_ALREADY_ANSWERED = "This request has already been answered."


def _people(users: list[str]) -> str:
    return ", ".join(f"<@{user}>" for user in users)


def approval_question(requesters: list[str], tool: str, *, self_approval: bool = True) -> str:
    if not self_approval:
        return (
            f"{_people(requesters)} asked the assistant to run *{tool}* with these arguments. "
            "Someone else (or an admin) must approve."
        )
    if len(requesters) > 1:
        return (
            f"{_people(requesters)}: the assistant wants to run *{tool}* with these arguments. An admin must approve."
        )
    return f"{_people(requesters)}, the assistant wants to run *{tool}* with these arguments. Approve?"


def approval_not_yours(requesters: list[str], *, self_approval: bool = True) -> str:
    if not self_approval:
        return "You asked for this, so someone else (or an admin) must approve it."
    if len(requesters) > 1:
        return f"This request comes from {_people(requesters)}: only an admin can answer it."
    return f"Only {_people(requesters)} or an admin can answer this request."


def approval_outcome(tool: str, *, approved: bool, by: str) -> str:
    return f"✅ *{tool}* approved by <@{by}>." if approved else f"❌ *{tool}* declined by <@{by}>."


def approval_timed_out(tool: str) -> str:
    return f"⌛ *{tool}* was not run: nobody answered in time."


# --- slash commands ------------------------------------------------------------------
ADMINS_ONLY = "Only the bot's admins can change that here."
ASSIST_HELP = """*assist-bot* — mention me in a channel or DM me; I answer in the thread.
`/assist assistants` — the assistants you can pick
`/assist use <assistant>` — pick this channel's assistant
`/assist reset` — forget this channel's conversations
`/assist status` — what this channel uses
`/assist tools` — tools you can use, with their slash commands
`/assist files` — this channel's knowledge; `/assist forget <file>` removes one
`/assist intake on|off` — take shared files in automatically, or only when addressed
`/assist usage` — this month's tokens and estimated cost here (admins: the workspace too)
`/assist forget` — (admins) delete everything of this channel: conversations, files, knowledge
`/assist feedback` — 👍/👎 counts for answers here (admins: per assistant)
`/assist help` — this help"""


def tool_not_allowed(tool: str) -> str:
    return f"You may not use *{tool}* here."


def bad_arguments(command: str, problem: str) -> str:
    return (
        f"That did not work: {problem}.\nTry `{command} key=value …`, JSON, plain words, "
        f"or `{command}` alone for a form."
    )


def tool_failed(tool: str, output: str) -> str:
    return f"*{tool}* failed: {output.removeprefix('Error: ')}"


# --- files -------------------------------------------------------------------------------
def sources(citations) -> str:
    """Footnotes for the knowledge files an answer cites (mrkdwn)."""
    if not citations:
        return ""
    lines = [f"[{n}] <{c.link}|{c.filename}>" if c.link else f"[{n}] {c.filename}" for n, c in enumerate(citations, 1)]
    return "*Sources*\n" + "\n".join(lines)


def upload_failed(name: str) -> str:
    return f"⚠️ I made *{name}* but could not upload it here."


def unsupported_file(name: str, kind: str) -> str:
    """`name` and `kind` come escaped for Slack (slack/escape.py), as do all names below."""
    from assist_bot.filetypes import supported_summary

    return f"⚠️ I can't use *{name}* (type .{kind or 'unknown'}). I take {supported_summary()}."


def added_to_knowledge(name: str, channel: str) -> str:
    return f"📚 Added *{name}* to <#{channel}>'s knowledge."


def added_to_code(name: str) -> str:
    return f"📊 Added *{name}* to this thread's code interpreter: ask away."


def intake_failed(name: str, reason: str) -> str:
    return f"⚠️ I could not add *{name}*: {reason}"


def knowledge_elsewhere(count: int, current: str, there: list[str]) -> str:
    """`count` files of the channel's knowledge are kept at another model server than that of
    `current`, the assistant in use: at that of the assistants `there` (none: no assistant uses
    that server any more). That server's ids mean nothing here, so answers go without them."""
    if not there:
        return (
            f"⚠️ {count} file(s) of this channel's knowledge live on a model server no assistant uses any more, "
            "so answers here do not search them: `/assist forget` and share them again."
        )
    back = " or ".join(f"`/assist use {name}`" for name in there)
    return (
        f"⚠️ {count} file(s) of this channel's knowledge live on the model server of *{there[0]}*, not of "
        f"*{current}* (in use here), so answers here do not search them: switch back ({back}), "
        "or `/assist forget` and share them again."
    )


# --- usage, budgets and clean-up --------------------------------------------------------
def usage_block(where: str, month: str, figures, cost: tuple[float, list[str]], budget: int) -> str:
    """One scope's month (`figures`: usage.Figures) with its estimated cost (USD, and the models
    without a price — escaped for Slack by the caller) and budget."""
    if not figures.raw:
        return f"*Usage of {where} in {month}:* nothing yet."
    usd, unpriced = cost
    lines = [
        f"*Usage of {where} in {month}*",
        f"Tokens: {figures.tokens:,} — input {figures.total('input'):,} (cached {figures.total('cached'):,}), "
        f"output {figures.total('output'):,} (reasoning {figures.total('reasoning'):,})",
        f"Answers: {figures.total('turns'):,} ({figures.total('responses'):,} model responses) · tools: "
        f"code interpreter {figures.total('code_interpreter'):,}, file search {figures.total('file_search'):,}, "
        f"web search {figures.total('web_search'):,}",
        f"Stored: {_size(figures.total('stored_bytes'))} in {figures.total('stored_files'):,} file(s)",
        f"Estimated cost: ${usd:,.4f}" + (f" (no price for {', '.join(unpriced)})" if unpriced else ""),
    ]
    if budget:
        lines.append(f"Budget: {figures.tokens:,} of {budget:,} tokens ({figures.tokens * 100 // budget} %)")
    return "\n".join(lines)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} B"


def usage_top(channels: list[tuple[str, int]], users: list[tuple[str, int]], assistants: list[tuple[str, int]]) -> str:
    top_channels = ", ".join(f"<#{c}> {n:,}" for c, n in channels) or "none"
    top_users = ", ".join(f"<@{u}> {n:,}" for u, n in users) or "none"
    used = ", ".join(f"{a} {n:,}" for a, n in sorted(assistants, key=lambda a: -a[1]) if n) or "none"
    return f"*Most tokens* — channels: {top_channels}\nusers: {top_users}\nassistants: {used}"


def your_budget(used: int, budget: int) -> str:
    return f"*Your tokens this month:* {used:,} of {budget:,} ({used * 100 // budget} %)"


def channel_forgotten(deleted: int) -> str:
    return (
        f"Done: I deleted this channel's data — {deleted} item(s) at the AI service (conversations, files, "
        "knowledge). The next message starts afresh."
    )
