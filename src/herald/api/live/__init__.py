"""Live status over the event feed: the WebSocket stream, SSE, and the watch they share."""

from __future__ import annotations

from typing import Any

from herald.api.live.sse import notification_events
from herald.api.live.stream import notification_stream
from herald.api.live.tokens import create_stream_token

live_routes: list[Any] = [notification_stream, notification_events, create_stream_token]
