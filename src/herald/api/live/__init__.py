"""Live status over the event feed: the WebSocket stream, SSE, and the watch they share."""
