"""`create_app(settings)`: the Litestar application whose lifespan also runs the workers.

Lifespan, in order: logging, the Postgres engine, the Redis pool, the providers (worker
role), the worker runtime when `ENABLE_WORKERS`, then the gRPC server when `ENABLE_API` and
`ENABLE_GRPC`. On shutdown, in reverse: readiness turns 503 at once, gRPC health turns
NOT_SERVING and gRPC stops within `SHUTDOWN_GRACE_SECONDS`, the workers drain within it, and
every pool is closed. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from herald import __version__, memory, metrics
from herald.api.rest.health import route_handlers as health_routes
from herald.api.rest.metrics import route_handlers as metrics_routes
from herald.api.rest.openapi import ClosedStructSchemaPlugin
from herald.api.rest.problems import exception_handlers, problem_details_plugin
from herald.auth.keys import KeyAuthenticator
from herald.channels import open_providers
from herald.channels.push import ServiceAccount
from herald.config import Settings, SettingsError
from herald.db.engine import (
    create_engine,
    create_session_maker,
    open_pool,
    warn_without_lock_timeout,
)
from herald.logging import configure_logging
from herald.memory import CeilingTooLow, MemoryCeiling
from herald.messages.recipient_use_cases import RecipientUseCases
from herald.messages.template_use_cases import TemplateUseCases
from herald.notifications.events import EventFeed
from herald.notifications.ratelimit import RateLimiter
from herald.notifications.use_cases import NotificationUseCases
from herald.queue import JobQueue, JobRegistry, WorkerRuntime, load_jobs, select_queues
from herald.queue.control import ProcessInfo
from herald.queue.lag import LagGuard
from herald.queue.stats import QueueStats
from herald.redis_connection import redis_client
from herald.reporting import configure_reporting, flush_reports
from herald.request_context import RequestContextMiddleware
from herald.resources import Resources, instance_name, process_role

log = structlog.get_logger()

MAX_BODY_BYTES = 1024 * 1024


async def _warn_about_eviction(redis: Redis) -> None:
    """Evicted job keys are lost work: say so loudly when Redis may evict them."""
    try:
        policy = (await redis.config_get("maxmemory-policy")).get("maxmemory-policy")
    except Exception as exc:  # CONFIG may be disabled (managed Redis) or Redis may be down
        log.warning("redis.policy_unknown", error=f"{type(exc).__name__}: {exc}")
        return
    if policy != "noeviction":
        log.warning(
            "redis.eviction_enabled",
            maxmemory_policy=policy,
            detail="set maxmemory-policy noeviction: Redis may evict queued jobs under memory "
            "pressure (the reconciler re-enqueues them, but only after a delay)",
        )


@contextlib.asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings)
    registry: JobRegistry = app.state.registry
    role = process_role(settings)
    instance = instance_name(settings)
    label = f"herald:{role}:{instance}"
    metrics.role_info.info(
        {
            "role": role,
            "api": str(settings.enable_api).lower(),
            "workers": str(settings.enable_workers).lower(),
        }
    )
    metrics.build_info.info({"version": __version__})

    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(settings, application_name=label)
        stack.push_async_callback(engine.dispose)
        worker_engine = engine
        if settings.enable_api and settings.enable_workers:
            worker_engine = create_engine(settings, application_name=f"{label}:workers")
            stack.push_async_callback(worker_engine.dispose)
        redis = redis_client(
            settings.redis_url,
            client_name=label,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=15,
        )
        stack.push_async_callback(redis.aclose)
        session_maker = create_session_maker(engine)
        worker_session_maker = create_session_maker(worker_engine)
        jobs = JobQueue(redis, registry)
        feed = EventFeed(redis)
        feed.start()
        stack.push_async_callback(feed.stop)
        use_cases = NotificationUseCases(settings, engine, session_maker, jobs, feed)
        resources = Resources(
            settings=settings,
            engine=engine,
            session_maker=session_maker,
            worker_engine=worker_engine,
            worker_session_maker=worker_session_maker,
            redis=redis,
            jobs=jobs,
            role=role,
            instance=instance,
            authenticator=KeyAuthenticator(session_maker),
            feed=feed,
            use_cases=use_cases,
            recipients=RecipientUseCases(engine, use_cases.unit_of_work),
            templates=TemplateUseCases(engine),
        )
        # Unwound before the feed and the pools: the last groups are written with them open.
        resources.use_cases.groups.start()
        stack.push_async_callback(resources.use_cases.stop)
        app.state.resources = resources
        app.state.authenticator = resources.authenticator
        app.state.collect_queue_metrics = QueueStats(redis, registry.queues).collect
        if settings.enable_workers:
            resources.providers = await stack.enter_async_context(open_providers(settings))
            provider_names = {ch: p.name for ch, p in resources.providers.items()}
            resources.rate_limiter = RateLimiter(redis, settings, provider_names)
            metrics.prime(select_queues(settings, registry), provider_names)
        await _warn_about_eviction(redis)
        await warn_without_lock_timeout(engine, settings)
        if settings.enable_api:
            await open_pool(engine, settings.database_pool_size)
        # Measured in every role; it holds workers back only where they share the loop with
        # the API (a unified process).
        lag_guard = LagGuard(
            settings.lag_guard_seconds if role == "unified" else 0.0,
            share=settings.api_first_worker_share,
        )
        lag_guard.start()
        stack.push_async_callback(lag_guard.stop)
        app.state.lag_guard = lag_guard

        if settings.enable_workers:
            runtime = WorkerRuntime(
                settings,
                registry,
                resources.jobs,
                resources,
                client_name=label,
                redis=redis,
                session_maker=worker_session_maker,
                process=ProcessInfo(
                    instance=instance,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    role=role,
                    queues=select_queues(settings, registry),
                    started=time.time(),
                    last_seen=time.time(),
                ),
            )
            for install in app.state.worker_extensions:
                install(runtime, resources)
            resources.runtime = runtime
            runtime.lag_guard = lag_guard
            await runtime.start()
            stack.push_async_callback(runtime.drain, settings.shutdown_grace_seconds)
        if settings.enable_api and settings.enable_grpc:
            from herald.api.grpc.server import GrpcServer

            resources.grpc = GrpcServer(resources)
            await resources.grpc.start()
            # Before the workers drain (the stack unwinds in reverse); a no-op when the
            # SIGTERM drain has stopped it already.
            stack.push_async_callback(resources.grpc.stop, settings.shutdown_grace_seconds)
        stack.push_async_callback(asyncio.to_thread, flush_reports)
        stack.callback(setattr, resources, "draining", True)
        # Everything allocated so far lives as long as the process: move it out of the
        # collector's reach, so full collections stay short (bench: idle GET p99 ~140 -> ~60 ms).
        gc.collect()
        gc.freeze()
        if settings.max_memory_mb:
            ceiling = MemoryCeiling(settings.max_memory_mb, lambda: _restart_for_memory(app))
            try:
                ceiling.check_start_up()
            except CeilingTooLow as exc:
                log.error("memory.ceiling_too_low", detail=str(exc))
                app.state.exit_status = 2
                raise
            ceiling.start()
            stack.push_async_callback(ceiling.stop)
        log.info("herald.started", role=role, instance=instance, version=__version__)
        yield
        log.info("herald.stopping", role=role)
    log.info("herald.stopped")


def _restart_for_memory(app: Litestar) -> None:
    """Drain as on SIGTERM and exit with the memory ceiling's status."""
    app.state.exit_status = memory.EXIT_STATUS
    request_shutdown = app.state.get("request_shutdown")
    if request_shutdown is not None:
        request_shutdown()
    else:  # not under `herald serve` (uvicorn run another way): the signal drains too
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings: Settings) -> Litestar:
    """Build the application for `settings`; every resource opens in the lifespan.

    Raises `ValueError` when `JOB_MODULES` or `WORKER_QUEUES` name something that is not there,
    or the FCM key file cannot be used.
    """
    from herald.features import api_routers, worker_extensions

    try:
        registry = load_jobs(settings.job_modules)
    except ImportError as exc:
        raise ValueError(f"JOB_MODULES: cannot import {exc.name or exc}") from exc
    if settings.enable_workers:
        select_queues(settings, registry)
        if settings.push_provider == "fcm":
            try:  # read the key file now, so a bad one is a start-up error, not a traceback
                ServiceAccount.from_file(settings.fcm_credentials_file)
            except SettingsError as exc:
                raise ValueError(str(exc)) from exc

    configure_reporting(settings)
    routes: list[Any] = [*health_routes, *metrics_routes]
    if settings.enable_api:
        routes.append(Router(path="/", route_handlers=api_routers(settings)))
    app = Litestar(
        route_handlers=routes,
        lifespan=[_lifespan],
        exception_handlers=exception_handlers,
        plugins=[problem_details_plugin(), ClosedStructSchemaPlugin()],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Herald",
            version=__version__,
            description="Send email, SMS, push (FCM) and WhatsApp notifications and follow "
            "their delivery.",
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API key from `herald keys create NAME`.",
                    )
                }
            ),
        )
        if settings.enable_api
        else None,
        debug=False,
        logging_config=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.worker_extensions = worker_extensions(settings)
    # Wrap the router itself, so 404s and 405s are logged and counted too.
    app.asgi_handler = RequestContextMiddleware(
        app.asgi_handler, quiet_prefixes=(settings.dashboard_path.rstrip("/") + "/partials/",)
    )
    return app


def create_app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` (used by `herald serve --reload`)."""
    from herald.config import load_settings

    return create_app(load_settings())
