"""An external client: `buf curl`, which knows the service only through reflection."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.api.grpc.conftest import GrpcApp

BUF = Path(sys.executable).parent / "buf"
SERVICE = "herald.v1.NotificationService"


def _command(app: GrpcApp, method: str, key: str, body: dict[str, Any]) -> list[str]:
    return [
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-H",
        f"authorization: Bearer {key}",
        "-d",
        json.dumps(body),
        f"http://127.0.0.1:{app.port}/{SERVICE}/{method}",
    ]


async def buf_curl(app: GrpcApp, method: str, key: str, body: dict[str, Any]) -> Any:
    process = await asyncio.create_subprocess_exec(
        *_command(app, method, key, body),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_send_get_list_watch_and_cancel_with_buf_curl(
    grpc_app: GrpcApp, api_key: str
) -> None:
    sms = {"channel": "CHANNEL_SMS", "to": "+447911123456", "body": "Hi"}
    sent = await buf_curl(grpc_app, "SendNotification", api_key, {"notification": sms})
    assert sent["status"] == "STATUS_QUEUED"
    watch = await asyncio.create_subprocess_exec(
        *_command(grpc_app, "WatchNotifications", api_key, {"ids": [sent["id"]]}),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert watch.stdout is not None
        statuses: list[str] = []
        decoder, text = json.JSONDecoder(), ""
        async with asyncio.timeout(20):
            while "STATUS_SENT" not in statuses:
                text += (await watch.stdout.read(4096)).decode()
                while text.strip():
                    try:
                        event, end = decoder.raw_decode(text.lstrip())
                    except ValueError:
                        break
                    statuses.append(event["status"])
                    text = text.lstrip()[end:]
        assert statuses[-1] == "STATUS_SENT"
    finally:
        watch.kill()
        await watch.wait()
    got = await buf_curl(grpc_app, "GetNotification", api_key, {"id": sent["id"]})
    assert [e["status"] for e in got["events"]] == [
        "STATUS_QUEUED",
        "STATUS_SENDING",
        "STATUS_SENT",
    ]
    listed = await buf_curl(grpc_app, "ListNotifications", api_key, {"channel": "CHANNEL_SMS"})
    assert [n["id"] for n in listed["notifications"]] == [sent["id"]]
    later = {**sms, "sendAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    scheduled = await buf_curl(grpc_app, "SendNotification", api_key, {"notification": later})
    assert scheduled["status"] == "STATUS_SCHEDULED"
    cancelled = await buf_curl(grpc_app, "CancelNotification", api_key, {"id": scheduled["id"]})
    assert cancelled["status"] == "STATUS_CANCELLED"
