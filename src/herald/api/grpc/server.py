"""The gRPC server: `grpc.aio` in the process's event loop, beside uvicorn, on `GRPC_PORT`.

Serves `herald.v1.NotificationService`, the standard health service (`grpc.health.v1`) and
reflection. `grpc.so_reuseport` is off, so a second process cannot silently share the port:
binding a port in use is a start-up error. Health is SERVING while Postgres and Redis answer
and NOT_SERVING when they do not (checked every few seconds) and from the moment shutdown
begins; then open watches end, and `stop(grace)` lets calls in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from herald.api.grpc.messages import SERVICE_NAME as MESSAGE_SERVICE
from herald.api.grpc.messages import MessageService
from herald.api.grpc.recipients import SERVICE_NAME as RECIPIENT_SERVICE_NAME
from herald.api.grpc.recipients import RecipientService
from herald.api.grpc.servicer import SERVICE_NAME, NotificationService
from herald.api.grpc.templates import TEMPLATE_SERVICE_NAME, TemplateService
from herald.api.rest.health import check_dependencies
from herald.resources import Resources

log = structlog.get_logger()

# As REST's request body limit; larger requests are RESOURCE_EXHAUSTED (grpc's own check).
MAX_MESSAGE_BYTES = 1024 * 1024
# A batch of 1000 read back is larger than any request.
MAX_SEND_BYTES = 64 * 1024 * 1024
HEALTH_INTERVAL_SECONDS = 2.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcStartError(RuntimeError):
    """The gRPC server cannot start (its port is taken, or the address is wrong)."""


class GrpcServer:
    """Created and started by the lifespan (in the running loop), stopped by it or the drain."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        settings = resources.settings
        self.address = f"{settings.grpc_host}:{settings.grpc_port}"
        self.service = NotificationService(resources)
        self.health = HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ]
        )
        server.add_generic_rpc_handlers((self.service.handler(),))
        server.add_generic_rpc_handlers((MessageService(self._resources).handler(),))
        server.add_generic_rpc_handlers((TemplateService(self._resources).handler(),))
        server.add_generic_rpc_handlers((RecipientService(self._resources).handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                MESSAGE_SERVICE,
                TEMPLATE_SERVICE_NAME,
                RECIPIENT_SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        try:
            self.port = server.add_insecure_port(self.address)
        except RuntimeError as exc:
            raise GrpcStartError(self._cannot_listen(str(exc))) from None
        if self.port == 0:
            raise GrpcStartError(self._cannot_listen("the address could not be bound"))
        await server.start()
        self._server = server
        await self._set(SERVING)
        self._health_task = asyncio.create_task(self._watch_health(), name="herald-grpc-health")
        log.info("grpc.started", address=self.address)

    def _cannot_listen(self, why: str) -> str:
        message = (
            f"GRPC_HOST/GRPC_PORT: cannot listen for gRPC on {self.address} (is another "
            f"process using the port? set GRPC_PORT, or ENABLE_GRPC=false): {why}"
        )
        log.error("grpc.cannot_listen", address=self.address, detail=message)
        return message

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for service in ("", SERVICE_NAME):
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        serving = True
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
            checks = await check_dependencies(self._resources)
            ok = all(value == "ok" for value in checks.values())
            if ok != serving:
                serving = ok
                log.info("grpc.health", serving=ok, **checks)
                await self._set(SERVING if ok else NOT_SERVING)

    async def stop(self, grace: float) -> None:
        """Health NOT_SERVING, end the watches, then stop within `grace` (idempotent)."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace), name="herald-grpc-stop")
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        self.service.end_watches()
        if self._server is not None:
            await self._server.stop(grace)
        log.info("grpc.stopped")
