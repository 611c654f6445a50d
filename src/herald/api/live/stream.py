"""`/v1/notifications/stream`: a WebSocket of status events, a snapshot first.

Authenticate with `Authorization: Bearer <key>` (servers) or `?token=` from
`POST /v1/stream-tokens` (browsers). Choose what to follow with `?ids=<id>,<id>` (at most
`MAX_IDS`), or nothing for every notification of the key. Messages, JSON text:

- `{"type": "snapshot", "notification": {...}}`: each followed notification as `GET` returns
  it (with `?ids` only; an unknown id is `{"type": "error", "code": "not_found", "id": ...}`);
- `{"type": "event", "notification_id", "status", "attempt", "detail", "sequence", "at"}`;
  `sequence` is per notification: a gap means missed events, re-read with `GET`;
- `{"type": "dropped", "count": n}`: this client fell behind and n events were dropped;
- `{"type": "heartbeat"}` every `STREAM_HEARTBEAT_SECONDS` when nothing else was sent.

With `?ids`, the stream closes with 1000 once every followed notification is final (or not
found). A bad key or token closes with 4403, bad `ids` with 4400; on shutdown the server
closes with 1012 (service restart) within a second of draining starting, so clients
reconnect elsewhere.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from herald.api.live.tokens import redeem
from herald.api.live.watch import Dropped, Watch
from herald.auth.keys import Principal
from herald.errors import HeraldError, NotFound
from herald.notifications.events import StatusEvent
from herald.resources import Resources
from herald.vocabulary import FINISHED

log = structlog.get_logger()

MAX_IDS = 100
_encode = msgspec.json.Encoder().encode


async def _principal(socket: WebSocket[Any, Any, Any], resources: Resources) -> Principal | None:
    token = socket.query_params.get("token")
    if token:
        return await redeem(resources, token)
    try:
        return await resources.authenticator.authenticate(socket.headers.get("authorization"))
    except HeraldError:
        return None


def _ids(raw: str | None) -> list[uuid.UUID] | None:
    if not raw:
        return None
    parts = [p for p in raw.split(",") if p]
    if len(parts) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids")
    return [uuid.UUID(p) for p in parts]


def _event(event: StatusEvent) -> bytes:
    fields = msgspec.structs.asdict(event)
    del fields["owner"]  # the API key's id: the client knows whose stream it is
    return _encode({"type": "event", **fields})


@websocket("/v1/notifications/stream")
async def notification_stream(socket: WebSocket[Any, Any, Any]) -> None:
    resources: Resources = socket.app.state.resources
    await socket.accept()
    principal = await _principal(socket, resources)
    if principal is None or principal.owner is None:
        await socket.close(code=4403, reason="unknown, revoked or spent API key or token")
        return
    try:
        ids = _ids(socket.query_params.get("ids"))
    except ValueError as exc:
        await socket.close(code=4400, reason=f"ids: {exc}")
        return
    wanted = None if ids is None else {str(i) for i in ids}
    owner = str(principal.owner)
    heartbeat = resources.settings.stream_heartbeat_seconds
    try:
        async with Watch(
            resources, owner, lambda e: wanted is None or e.notification_id in wanted
        ) as watch:
            for notification_id in ids or []:
                try:
                    found = await resources.use_cases.get_notification(principal, notification_id)
                except NotFound:
                    message = {"type": "error", "code": "not_found", "id": str(notification_id)}
                    await socket.send_data(_encode(message).decode())
                    wanted.discard(str(notification_id))  # type: ignore[union-attr]
                    continue
                for event in found.events or []:
                    watch.note(str(found.id), event.sequence)
                await socket.send_data(
                    _encode({"type": "snapshot", "notification": found}).decode()
                )
                if found.status in FINISHED:
                    wanted.discard(str(found.id))  # type: ignore[union-attr]
            while not watch.stopping:
                if wanted is not None and not wanted:
                    await socket.close(code=1000, reason="every followed notification is final")
                    return
                item = await watch.next(idle=heartbeat)
                if item is None:
                    if not watch.stopping:
                        await socket.send_data('{"type":"heartbeat"}')
                    continue
                if isinstance(item, Dropped):
                    await socket.send_data(
                        _encode({"type": "dropped", "count": item.count}).decode()
                    )
                    continue
                await socket.send_data(_event(item).decode())
                if wanted is not None and item.status in FINISHED:
                    wanted.discard(item.notification_id)
        await socket.close(code=1012, reason="server restarting; reconnect")
    except WebSocketDisconnect:
        return
    except HeraldError as exc:
        log.warning("stream.failed", error=exc.detail)
        await socket.close(code=1011, reason=exc.detail[:120])
