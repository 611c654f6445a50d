"""The process's shared resources, created in the lifespan and closed in reverse order."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herald.config import Settings
from herald.queue import JobQueue, WorkerRuntime

if TYPE_CHECKING:
    from herald.api.grpc.server import GrpcServer
    from herald.auth.keys import KeyAuthenticator
    from herald.channels import Provider
    from herald.messages.recipient_use_cases import RecipientUseCases
    from herald.messages.template_use_cases import TemplateUseCases
    from herald.messages.use_cases import MessageUseCases
    from herald.notifications.batches import DeliveryBatches
    from herald.notifications.events import EventFeed
    from herald.notifications.ratelimit import RateLimiter
    from herald.notifications.unit_of_work import UnitOfWork
    from herald.notifications.use_cases import NotificationUseCases


def process_role(settings: Settings) -> str:
    if settings.enable_api and settings.enable_workers:
        return "unified"
    return "api" if settings.enable_api else "worker"


def instance_name(settings: Settings) -> str:
    return settings.instance_name or f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Resources:
    """What request handlers and jobs share: settings, pools, the job queue, the runtime."""

    settings: Settings
    # The API's pool (and the CLI's, the health checks', the dashboard's).
    engine: AsyncEngine
    session_maker: async_sessionmaker[AsyncSession]
    # The workers' pool. In a unified process it is a second pool, so that an HTTP request
    # never waits for a connection behind deliveries (with one shared pool, a saturated
    # worker set made reads queue for seconds); in a single-role process it is `engine`.
    worker_engine: AsyncEngine
    worker_session_maker: async_sessionmaker[AsyncSession]
    redis: Redis
    jobs: JobQueue
    role: str
    instance: str
    authenticator: KeyAuthenticator
    feed: EventFeed
    # The operations every interface calls (over the API's pool).
    use_cases: NotificationUseCases
    # The template operations (issue 17), over the same pool.
    templates: TemplateUseCases
    # Recipients, push tokens and preferences (the messages layer's).
    recipients: RecipientUseCases
    # One provider per channel (worker role only; empty in an API-only process).
    providers: dict[str, Provider] = field(default_factory=dict)
    rate_limiter: RateLimiter | None = None
    runtime: WorkerRuntime | None = None
    # The gRPC server (API role with ENABLE_GRPC only).
    grpc: GrpcServer | None = None
    draining: bool = False

    @cached_property
    def messages(self) -> MessageUseCases:
        """The message operations, over the notifications' (and the API's pool)."""
        from herald.messages.use_cases import MessageUseCases

        return MessageUseCases(self.use_cases, self.engine)

    @cached_property
    def worker_autocommit_engine(self) -> AsyncEngine:
        """The workers' pool, statement by statement: a delivery's claim and its outcome."""
        return self.worker_engine.execution_options(isolation_level="AUTOCOMMIT")

    @cached_property
    def delivery_batches(self) -> DeliveryBatches:
        """The batchers that write deliveries' claims and outcomes (worker role)."""
        from herald.notifications.batches import DeliveryBatches

        return DeliveryBatches(self)

    def worker_unit_of_work(self, *, transactional: bool = False) -> UnitOfWork:
        """A unit of work on the workers' pool: statement by statement (a delivery), or one
        transaction (the reconciler)."""
        engine = self.worker_engine if transactional else self.worker_autocommit_engine
        return self.use_cases.unit_of_work(engine)
