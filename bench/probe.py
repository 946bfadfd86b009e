"""Outside view of the bot's event loop: `python -m bench.probe PORT [--interval S] [--max-seconds S]`.

A small process of its own (no event loop, blocking sockets, so its own lateness does
not pollute the figures) that GETs http://127.0.0.1:PORT/healthz every --interval
seconds on a keep-alive connection until SIGTERM or --max-seconds, then prints one
JSON line: [[monotonic_time, latency_seconds or null], ...].

/healthz is answered on the bot's event loop after one Redis PING, so its latency is
(time the request waits for the loop) + (PING round trip, which waits for the loop
again) + parsing: an upper estimate of the loop lag, ~2 loop turns.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import time

_stop = False


def _on_term(*_: object) -> None:
    global _stop
    _stop = True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--max-seconds", type=float, default=600)
    p.add_argument("--timeout", type=float, default=10)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    samples: list[tuple[float, float | None]] = []
    conn: http.client.HTTPConnection | None = None
    deadline = time.monotonic() + args.max_seconds
    while not _stop and time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            samples.append((t0, time.monotonic() - t0 if resp.status == 200 else None))
        except (OSError, http.client.HTTPException):
            samples.append((t0, None))
            if conn is not None:
                conn.close()
            conn = None
        rest = args.interval - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)
    print(json.dumps(samples), flush=True)


if __name__ == "__main__":
    main()
