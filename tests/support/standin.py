"""A Twilio-compatible stand-in provider that records every request, for counting sends.

Runs a threaded HTTP server on a free loopback port. Each request is recorded with the
notification id Herald sends as `I-Twilio-Idempotency-Token`; `respond(token, n)` decides
the answer to the n-th request for that notification (default: 201 with a message sid).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass(frozen=True)
class Received:
    token: str
    to: str
    body: str
    at: float


def accept(token: str, n: int) -> Answer:
    return 201, {"sid": f"SM{token.replace('-', '')[:30]}{n}"}, {}


class TwilioStandIn:
    ACCOUNT = "AC0123456789"

    def __init__(
        self, *, delay: float = 0.0, respond: Callable[[str, int], Answer] = accept
    ) -> None:
        self.delay = delay
        self.respond = respond
        self.received: list[Received] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                token = self.headers.get("I-Twilio-Idempotency-Token", "")
                with stand_in._lock:
                    stand_in.received.append(
                        Received(
                            token, form.get("To", [""])[0], form.get("Body", [""])[0], time.time()
                        )
                    )
                    count = sum(1 for r in stand_in.received if r.token == token)
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                status, body, headers = stand_in.respond(token, count)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Herald was killed mid-request: that is the point of some tests

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Settings that point Herald's SMS channel at this stand-in."""
        return {
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": self.ACCOUNT,
            "TWILIO_AUTH_TOKEN": "stand-in-token",
            "TWILIO_FROM": "+15550001111",
            "TWILIO_BASE_URL": self.url,
        }

    def settings(self) -> dict[str, Any]:
        return {key.lower(): value for key, value in self.env().items()}

    def start(self) -> TwilioStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sends(self) -> Counter[str]:
        with self._lock:
            return Counter(r.token for r in self.received)

    def times(self) -> list[float]:
        with self._lock:
            return sorted(r.at for r in self.received)
