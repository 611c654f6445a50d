"""The process's shared resources, created in the lifespan and closed in reverse order."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herald.config import Settings
from herald.queue import JobQueue, WorkerRuntime


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
    engine: AsyncEngine
    session_maker: async_sessionmaker[AsyncSession]
    redis: Redis
    jobs: JobQueue
    role: str
    instance: str
    runtime: WorkerRuntime | None = None
    draining: bool = False
    # Feature packages hang their own long-lived objects here (HTTP clients, providers).
    extras: dict[str, Any] = field(default_factory=dict)
