"""structlog, configured once per process, with the standard library routed through it.

JSON lines when stdout is not a terminal (or `LOG_FORMAT=json`), readable console output
otherwise. uvicorn's, arq's and SQLAlchemy's loggers go through the same processors, so an
operator reads one format. Context (`request_id`, `job_id`, `queue`, ...) is bound with
`structlog.contextvars` and appears on every line logged while it is bound.

What a log line may hold is deliberately narrow (see the README, "What Herald logs"):
exceptions are rendered as type, message and stack *without local variables* (structlog's
defaults show every frame's locals, which hold request scopes with API keys, provider
credentials, addresses and bodies), and the credentials Herald was configured with are
replaced by `[redacted]` wherever they would still appear in a rendered line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
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


def _dumps(value: Any, **_: Any) -> str:
    return msgspec.json.encode(value, enc_hook=str).decode()


REDACTED = "[redacted]"
# Secrets shorter than this are not searched for: they would match ordinary words.
_MIN_SECRET_LENGTH = 6


class SecretRedactor:
    """The last step before output: replace each configured credential in a rendered line.

    A backstop, not the main defence (nothing logs credentials on purpose, and tracebacks have
    no locals): an exception message or a library's line that quotes one still cannot leak it.
    One substring test per secret per line; lines without any cost a few hundred nanoseconds.
    """

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def scrub(self, line: str) -> str:
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return line


class _RedactingRenderer:
    """Wraps the renderer: renders, then scrubs the rendered line."""

    def __init__(self, renderer: Any, redactor: SecretRedactor) -> None:
        self._renderer = renderer
        self._redactor = redactor

    def __call__(self, logger: Any, name: str, event: Any) -> str:
        return self._redactor.scrub(self._renderer(logger, name, event))


def _exception_renderer(json: bool) -> Any:
    """Type, message and frames (file, line, function): never a frame's local variables."""
    if json:
        return structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    return structlog.dev.plain_traceback


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once.

    Herald's own lines go straight from structlog to stdout (level filtering happens when a
    call is made, JSON is encoded by msgspec): about four times cheaper per line than the
    stdlib round trip, which matters because every job logs twice on the event loop that
    also serves HTTP. Other libraries' stdlib lines are rendered by the same renderer.
    """
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    renderer: Any
    exceptions: list[Any]
    if _use_json(settings):
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        exceptions = [_exception_renderer(json=True)]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(), exception_formatter=_exception_renderer(json=False)
        )
        exceptions = []
    renderer = _RedactingRenderer(renderer, SecretRedactor(settings.secret_values()))
    level = logging.getLevelNamesMapping()[settings.log_level.value]

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            *exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            structlog.stdlib.ExtraAdder(),
            *exceptions,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
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
