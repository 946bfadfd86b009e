"""The fake OpenAI of the bench, run in a process of its own:
`python -m bench.fake_openai --mode stream|overhead ...` prints `PORT <n>` and serves
until SIGTERM (or --max-seconds).

tests.fakes.openai.FakeOpenAI with a cheaper streamer (SSE frames pre-encoded, the
frames due in one tick written in one go, so 1,000 streams fit beside the bot on two
cores) that records, per response, when the first `response.output_text.delta` and
`response.completed` were written (time.monotonic, system-wide on Linux).
GET /__bench/records returns them.

Modes:
- overhead: the model answers instantly, in three writes so that the three latencies
  do not overlap: created … first delta; --gap seconds later every other delta; 0.1 s
  later the done events and response.completed;
- stream: --tokens deltas, one every --token-delay seconds (written every --tick),
  then response.completed at once after the last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.openai import FakeOpenAI, message_item, new_id

FIRST_MARKER = "Alpha"
FINAL_MARKER = "Omega"


def make_tokens(n: int) -> list[str]:
    """About n tokens of plain prose with a little markdown, starting and ending with markers."""
    words = [
        "the",
        "bot",
        "streams",
        "answers",
        "into",
        "Slack",
        "threads",
        "while",
        "**model**",
        "writes",
        "`code`",
        "quickly",
        "and",
        "edits",
        "messages",
    ]
    out = [FIRST_MARKER]
    for i in range(1, max(2, n) - 1):
        word = words[i % len(words)]
        out.append(("\n\n" if i % 40 == 0 else " ") + word)
    out.append(" " + FINAL_MARKER + ".")
    return out


@dataclass
class Script:
    tokens: list[str]
    mode: str
    token_delay: float
    tick: float
    gap: float
    gap2: float = 0.1


def _frame(type_: str, seq: int, body: str) -> str:
    return f'event: {type_}\ndata: {{"type":"{type_}","sequence_number":{seq},{body}}}\n\n'


class BenchOpenAI(FakeOpenAI):
    def __init__(self, script: Script, **kwargs) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.default = lambda body: script  # every request gets the scripted reply
        self.records: list[dict] = []
        self._encoded = [json.dumps(t) for t in script.tokens]
        self._text = "".join(script.tokens)

    async def start(self) -> BenchOpenAI:
        await super().start()
        return self

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/__bench/records", self._records)

    async def _records(self, request: web.Request) -> web.Response:
        return web.json_response(self.records)

    async def _stream(self, request, body, reply, obj, conv_id):  # type: ignore[override]
        if not isinstance(reply, Script):
            return await super()._stream(request, body, reply, obj, conv_id)
        meta = self.conversations.get(conv_id or "", {}).get("metadata", {})
        rec = {
            "conv": conv_id,
            "team": meta.get("team"),
            "channel": meta.get("channel"),
            "thread_ts": meta.get("thread_ts"),
            "t_request": time.monotonic(),
            "t_first": None,
            "t_done": None,
            "deltas": len(reply.tokens),
        }
        self.records.append(rec)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": new_id("req"),
            }
        )
        await resp.prepare(request)
        msg_id = new_id("msg")
        where = f'"item_id":"{msg_id}","output_index":0,"content_index":0'
        obj_json = json.dumps(obj)
        seq = 0

        def nxt() -> int:
            nonlocal seq
            seq += 1
            return seq - 1

        head = (
            _frame("response.created", nxt(), f'"response":{obj_json}')
            + _frame("response.in_progress", nxt(), f'"response":{obj_json}')
            + _frame(
                "response.output_item.added",
                nxt(),
                f'"output_index":0,"item":{{"id":"{msg_id}","type":"message",'
                '"status":"in_progress","role":"assistant","content":[]}',
            )
            + _frame(
                "response.content_part.added",
                nxt(),
                '"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]},' + where,
            )
        )
        deltas = [
            _frame("response.output_text.delta", nxt(), f'"delta":{tok},"logprobs":[],' + where)
            for tok in self._encoded
        ]
        done_item = message_item(msg_id, self._text, "completed")
        tail = (
            _frame("response.output_text.done", nxt(), f'"text":{json.dumps(self._text)},"logprobs":[],' + where)
            + _frame("response.content_part.done", nxt(), f'"part":{json.dumps(done_item["content"][0])},' + where)
            + _frame("response.output_item.done", nxt(), f'"output_index":0,"item":{json.dumps(done_item)}')
        )
        obj["output"].append(done_item)
        self._finish(obj, body, conv_id, "completed")  # frees the conversation before the terminal event
        completed = _frame("response.completed", nxt(), f'"response":{json.dumps(obj)}')

        s = reply
        if s.mode == "overhead":
            rec["t_first"] = time.monotonic()
            await resp.write((head + deltas[0]).encode())
            await asyncio.sleep(s.gap)
            await resp.write("".join(deltas[1:]).encode())
            await asyncio.sleep(s.gap2)
            rec["t_done"] = time.monotonic()
            await resp.write((tail + completed).encode())
        else:
            await resp.write(head.encode())
            start = time.monotonic()
            sent = 0
            while sent < len(deltas):
                await asyncio.sleep(s.tick)
                due = min(len(deltas), int((time.monotonic() - start) / s.token_delay) + 1)
                if due <= sent:
                    continue
                chunk = "".join(deltas[sent:due])
                if sent == 0:
                    rec["t_first"] = time.monotonic()
                sent = due
                if sent == len(deltas):
                    rec["t_done"] = time.monotonic()
                    await resp.write((chunk + tail + completed).encode())
                else:
                    await resp.write(chunk.encode())
        await resp.write_eof()
        return resp


async def _amain(args: argparse.Namespace) -> None:
    script = Script(make_tokens(args.tokens), args.mode, args.token_delay, args.tick, args.gap)
    fake = BenchOpenAI(script, api_key=args.api_key)
    # FakeOpenAI.start builds its own app; add our route by wrapping web.Application once.
    original = web.Application

    def application(*a, **kw):
        app = original(*a, **kw)
        fake._routes(app)
        return app

    web.Application = application  # type: ignore[misc]
    try:
        await fake.start()
    finally:
        web.Application = original  # type: ignore[misc]
    print(f"PORT {fake.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except TimeoutError:
        print("fake openai: --max-seconds reached, stopping", file=sys.stderr)
    await fake.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("stream", "overhead"), default="stream")
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--token-delay", type=float, default=0.02)
    p.add_argument("--tick", type=float, default=0.05)
    p.add_argument("--gap", type=float, default=0.25)
    p.add_argument("--api-key", default="sk-bench")
    p.add_argument("--max-seconds", type=float, default=900)
    asyncio.run(_amain(p.parse_args()))


if __name__ == "__main__":
    main()
