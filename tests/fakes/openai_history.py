"""What the fake's model sees of a thread however its history comes (ASSIST_BOT_STATE): a
conversation's items, a chain of stored responses (`previous_response_id`), or the input
alone (`store: false`, the bot keeping the history). Also: which responses are stored, and
compaction / truncation of a request that carries no conversation.

Conversations are fitted to `context_window` in openai_responses.py (`_fit_context`);
without one, a request's whole context is fitted here: compacted past its
`compact_threshold` (estimated as the bot does, four characters of JSON a token) or, with
none, past `context_window` (words); truncated there with `truncation: "auto"`, or refused.
"""

from __future__ import annotations

import base64
import json

from aiohttp import web

from .openai_conversations import _normalize_items, _tokens
from .openai_http import Resource, _error, new_id
from .openai_replies import CONTEXT_WINDOW_MESSAGE, Failed, Reply


def _estimate(context: list[dict]) -> int:
    return sum(len(json.dumps(item)) // 4 + 1 for item in context)


def _compact_threshold(body: dict) -> tuple[bool, int | None]:
    """(does the request ask for compaction, its threshold if it names one)."""
    rules = [r for r in body.get("context_management") or [] if r.get("type") == "compaction"]
    return bool(rules), (rules[0].get("compact_threshold") if rules else None)


def texts_of(context: list[dict]) -> list[str]:
    """User and assistant messages, function calls' names and outputs, what a compaction item stands for."""
    out: list[str] = []
    for item in context:
        if item.get("type") == "compaction":
            try:
                out.extend(json.loads(base64.b64decode(item["encrypted_content"])))
            except ValueError:  # a compaction of a conversation (openai_responses.py) holds no texts
                pass
        elif item.get("type") == "function_call_output":
            out.append(str(item.get("output")))
        elif item.get("type") == "function_call":
            out.append(item.get("name", ""))
        for part in item.get("content") or [] if item.get("type") == "message" else []:
            out.append(part.get("text", "") if isinstance(part, dict) else str(part))
    return out


class History(Resource):
    conversations: dict[str, dict]
    context_window: int | None
    compactions: int
    truncations: int

    def _history_init(self, *, conversations: bool) -> None:
        # False: a Responses server without the Conversations API (vLLM, Ollama, LM Studio, LiteLLM...).
        self.has_conversations = conversations
        self.contexts: list[list[dict]] = []  # per POST /v1/responses: every item the model sees
        self._kept: dict[str, list[dict]] = {}  # stored responses: their input and output items
        self._kept_previous: dict[str, str | None] = {}  # and the response each one followed
        self._compactions: dict[str, dict] = {}  # response id -> the compaction item it streams first

    def forget_responses(self) -> None:
        """Stored responses expire (30 days at OpenAI; a restart on servers that keep them in memory)."""
        self._kept.clear()

    def seen_texts(self, n: int) -> list[str]:
        """Every text the model saw in request `n`, whichever way the history came."""
        return texts_of(self.contexts[n])

    def _context(self, body: dict, conv_id: str | None) -> list[dict]:
        """What the model sees: the conversation's items, or the chain of stored responses, then the input."""
        earlier: list[dict] = list(self.conversations[conv_id]["items"]) if conv_id in self.conversations else []
        previous = body.get("previous_response_id")
        chain: list[list[dict]] = []
        while previous in self._kept:
            chain.insert(0, self._kept[previous])
            previous = self._kept_previous[previous]
        return earlier + [item for part in chain for item in part] + _normalize_items(body.get("input"))

    def _refuse_history(self, body: dict, conv_id: str | None) -> web.Response | None:
        """The errors a server gives for history it does not have."""
        if conv_id is not None and not self.has_conversations:
            return _error(400, "Unknown parameter: 'conversation'.", param="conversation", code="unknown_parameter")
        previous = body.get("previous_response_id")
        if previous and previous not in self._kept:
            return _error(400, f"Previous response with id '{previous}' not found.", param="previous_response_id")
        return None

    def _keep(self, obj: dict, body: dict) -> None:
        if body.get("store", True) is not False:  # store: false keeps nothing to chain on
            self._kept[obj["id"]] = _normalize_items(body.get("input")) + [dict(it) for it in obj["output"]]
            self._kept_previous[obj["id"]] = body.get("previous_response_id")

    def _fit_stateless(self, body: dict, obj: dict, context: list[dict]) -> Reply | None:
        """A request without a conversation: compaction folds the whole context into one
        opaque item (its "encrypted" content is the texts it stands for, so that seen_texts()
        can tell what a later request still carries), streamed before the reply."""
        compact, threshold = _compact_threshold(body)
        limit = threshold if threshold is not None else self.context_window
        if compact and limit is not None and (_estimate if threshold else _tokens)(context) > limit:
            encrypted = base64.b64encode(json.dumps(texts_of(context)).encode()).decode()
            item = {"id": new_id("cmp"), "type": "compaction", "encrypted_content": encrypted, "created_by": "server"}
            self._compactions[obj["id"]] = item
            self.compactions += 1
            return None
        if self.context_window is None or _tokens(context) <= self.context_window:
            return None
        if body.get("truncation") == "auto":
            while len(context) > 1 and _tokens(context) > self.context_window:
                context.pop(0)  # the oldest items go first (the model's view, in self.contexts)
            self.truncations += 1
            return None
        return Failed("context_length_exceeded", CONTEXT_WINDOW_MESSAGE)
