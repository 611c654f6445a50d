"""The README's quick start on a bare machine, run inside a network namespace of its own.

Run by tests/embedded/test_embedded.py as `unshare --net <fresh venv>/bin/python this-file
DATA_DIR`: nothing listens on 5432 or 6379 in there, and nothing outside can be reached. It
uses only the standard library and the `herald` command of the venv it runs in. Prints one
JSON object with what it saw; exits non-zero (with the reason) on anything unexpected.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
PORT = 8000


def request(method: str, path: str, key: str = "", body: object = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", data=data, headers=headers, method=method
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read() or b"{}")
        return result


def wait(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen([str(BIN / "herald"), "serve"], env=env, stdout=out, stderr=out)
    wait(lambda: request("GET", "/health/ready") is not None, "/health/ready")
    return proc


def main() -> None:
    data = Path(sys.argv[1])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    occupied = [port for port in (5432, 6379) if listening(port)]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL"} and not key.startswith("HERALD_TEST")
    }
    env.update(HERALD_DATA_DIR=str(data), LOG_FORMAT="json", SHUTDOWN_GRACE_SECONDS="5")
    log = data.parent / "serve.log"

    first = serve(env, log)
    key = subprocess.run(
        [str(BIN / "herald"), "keys", "create", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    body = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
    accepted = request("POST", "/v1/notifications", key, body)
    path = f"/v1/notifications/{accepted['id']}"
    wait(lambda: request("GET", path, key)["status"] == "sent", "the notification to be sent")
    first.send_signal(signal.SIGTERM)
    first_exit = first.wait(timeout=60)

    second = serve(env, log)
    again = request("GET", path, key)
    second.send_signal(signal.SIGTERM)
    second_exit = second.wait(timeout=60)
    print(
        json.dumps(
            {
                "occupied": occupied,
                "key": key[:3],
                "accepted": accepted["status"],
                "after_restart": again["status"],
                "provider": again["provider"],
                "exits": [first_exit, second_exit],
            }
        )
    )


if __name__ == "__main__":
    main()
