"""The features mounted on the runtime: their routes, resources and worker extensions.

Adding a feature means adding it here, so a reader sees in one place what Herald serves.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from herald.config import Settings
from herald.queue import WorkerRuntime
from herald.resources import Resources

FeatureResources = Callable[[Resources], AbstractAsyncContextManager[None]]
WorkerExtension = Callable[[WorkerRuntime, Resources], None]


def api_routers(settings: Settings) -> list[Any]:
    """Route handlers mounted when `ENABLE_API` is true."""
    return []


def feature_resources(settings: Settings) -> list[FeatureResources]:
    """Async context managers opened in the lifespan after the pools, closed before them."""
    return []


def worker_extensions(settings: Settings) -> list[WorkerExtension]:
    """Called with the worker runtime before it starts (periodic tasks such as the reconciler)."""
    return []


def cli_commands() -> list[Any]:
    """Click commands the features add to `herald` (keys, dashboard)."""
    return []
