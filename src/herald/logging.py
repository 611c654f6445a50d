"""structlog, configured once per process, with the standard library routed through it.

JSON lines when stdout is not a terminal (or `LOG_FORMAT=json`), readable console output
otherwise. uvicorn's, arq's and SQLAlchemy's loggers go through the same processors, so an
operator reads one format. Context (`request_id`, `job_id`, `queue`, ...) is bound with
`structlog.contextvars` and appears on every line logged while it is bound.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from herald.config import LogFormat, Settings


def mask_address(address: str) -> str:
    """Mask an email address or phone number for logs: `j***@example.com`, `+4479******12`."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    if address.startswith("+") and len(address) > 8:
        return address[:5] + "*" * (len(address) - 7) + address[-2:]
    if len(address) > 8:
        return address[:4] + "…" + address[-2:]
    return "***"


def _use_json(settings: Settings) -> bool:
    if settings.log_format is LogFormat.AUTO:
        return not sys.stdout.isatty()
    return settings.log_format is LogFormat.JSON


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any
    if _use_json(settings):
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.dict_tracebacks)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.value)
    # uvicorn installs its own handlers; route them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "sqlalchemy", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Herald logs one line per request itself; uvicorn's access log would be a duplicate.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # arq logs each job with the arguments; Herald logs job start and finish with context.
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    logging.getLogger("arq.jobs").setLevel(logging.WARNING)
