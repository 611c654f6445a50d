"""uvicorn's server with Herald's graceful shutdown.

On the first SIGTERM or SIGINT the process keeps serving HTTP while it drains: readiness
answers 503 at once (so load balancers stop sending work), gRPC health turns NOT_SERVING and
gRPC stops (watches end, calls in flight finish), the worker loops stop picking and running
jobs get `SHUTDOWN_GRACE_SECONDS` to finish, and only then does uvicorn stop.
A second signal stops at once, as uvicorn does.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import structlog
import uvicorn
from litestar import Litestar

from herald.resources import Resources

log = structlog.get_logger()


class HeraldServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Litestar) -> None:
        super().__init__(config)
        self._app = app
        self._drain: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        app.state.request_shutdown = self.request_shutdown

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        resources: Resources | None = self._app.state.get("resources")
        if self._drain is not None or resources is None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._captured_signals.append(sig)
        resources.draining = True
        self._loop.call_soon_threadsafe(self._start_drain, resources)

    def request_shutdown(self) -> None:
        """Drain and stop as on SIGTERM, from inside the process (the memory ceiling). No
        signal is re-raised at the end, so the exit status is the caller's to set."""
        resources: Resources | None = self._app.state.get("resources")
        if self._drain is not None or resources is None or self._loop is None:
            self.should_exit = True
            return
        resources.draining = True
        self._loop.call_soon_threadsafe(self._start_drain, resources)

    def _start_drain(self, resources: Resources) -> None:
        self._drain = asyncio.create_task(self._drain_then_exit(resources))

    async def _drain_then_exit(self, resources: Resources) -> None:
        log.info("herald.shutdown_requested")
        grace = resources.settings.shutdown_grace_seconds
        try:
            # gRPC (health NOT_SERVING first, watches ended, calls in flight finished) and the
            # workers drain side by side, so both fit in one grace period.
            drains = []
            if resources.grpc is not None:
                drains.append(resources.grpc.stop(grace))
            if resources.runtime is not None:
                drains.append(resources.runtime.drain(grace))
            await asyncio.gather(*drains)
        finally:
            self.should_exit = True
