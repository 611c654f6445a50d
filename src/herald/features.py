"""The features mounted on the runtime: their routes, worker extensions and CLI commands.

Adding a feature means adding it here, so a reader sees in one place what Herald serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from herald.config import Settings
from herald.queue import WorkerRuntime
from herald.resources import Resources

WorkerExtension = Callable[[WorkerRuntime, Resources], None]


def api_routers(settings: Settings) -> list[Any]:
    """Route handlers mounted when `ENABLE_API` is true."""
    from herald.api.graphql.controller import graphql_controller
    from herald.api.live import live_routes
    from herald.api.rest.messages import MessageController
    from herald.api.rest.notifications import NotificationController
    from herald.api.rest.recipients import RecipientController
    from herald.api.rest.templates import TemplateController
    from herald.dashboard import dashboard_routers

    # The dashboard mounts only when DASHBOARD_USERNAME is set (it logs a warning otherwise).
    return [
        NotificationController,
        MessageController,
        TemplateController,
        RecipientController,
        graphql_controller(settings),
        *live_routes,
        *dashboard_routers(settings),
    ]


def worker_extensions(settings: Settings) -> list[WorkerExtension]:
    """Called with the worker runtime before it starts (periodic tasks such as the reconciler)."""
    from herald.notifications.reconciler import install_reconciler
    from herald.notifications.retention import install_retention

    return [install_reconciler, install_retention]


def cli_commands() -> list[Any]:
    """Click commands the features add to `herald`."""
    from herald.api.graphql.cli import graphql
    from herald.auth.cli import keys
    from herald.dashboard.cli import dashboard

    return [keys, dashboard, graphql]
