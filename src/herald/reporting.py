"""Error reporting to Sentry (optional: `SENTRY_DSN`, and the `sentry` extra for `sentry-sdk`).

Herald reports what it logs as a bug: an unhandled error in an HTTP handler (the 500 path), a
job that crashed, a provider call that raised something unexpected, a worker loop that died.
Each event is tagged with the context bound at the time (request id; job id, queue, function,
attempt and notification id), which are ids, never contents.

Nothing else leaves the process: no request data, no local variables, no breadcrumbs (they
would carry log lines), no default integrations. A `before_send` scrubber replaces every
credential in the settings, and anything shaped like an email address, a phone number or an
API key, in the messages that remain (exception values, the event message). With no DSN, or
without `sentry-sdk` installed, reporting does nothing; a DSN without the package is refused at
start-up with the install command.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from herald import __version__
from herald.config import Settings
from herald.logging import SecretRedactor

log = structlog.get_logger()

_TAGS = ("request_id", "job_id", "queue", "function", "attempt", "notification_id")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{6,}[0-9]")
_API_KEY = re.compile(r"hk_[A-Za-z0-9_-]{20,}")
_enabled = False


class Scrubber:
    """The `before_send` hook: keeps an event's structure, scrubs its words."""

    def __init__(self, secrets: list[str]) -> None:
        self._redactor = SecretRedactor(secrets)

    def scrub_text(self, text: str) -> str:
        text = self._redactor.scrub(text)
        text = _API_KEY.sub("[api key]", text)
        text = _EMAIL.sub("[email]", text)
        return _PHONE.sub("[phone]", text)

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        for key in ("request", "user", "extra", "breadcrumbs", "contexts", "modules"):
            event.pop(key, None)
        for exception in event.get("exception", {}).get("values", []):
            if isinstance(exception.get("value"), str):
                exception["value"] = self.scrub_text(exception["value"])
            for frame in exception.get("stacktrace", {}).get("frames", []):
                frame.pop("vars", None)
        message = event.get("logentry", {}).get("message")
        if isinstance(message, str):
            event["logentry"]["message"] = self.scrub_text(message)
        if isinstance(event.get("message"), str):
            event["message"] = self.scrub_text(event["message"])
        return event


def configure_reporting(settings: Settings) -> None:
    """Start the Sentry client when `SENTRY_DSN` is set. Raises ValueError without the SDK."""
    global _enabled
    dsn = settings.sentry_dsn.get_secret_value()
    if not dsn:
        return
    try:
        import sentry_sdk
    except ImportError:
        raise ValueError(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install 'herald[sentry]'"
        ) from None
    sentry_sdk.init(
        dsn=dsn,
        release=f"herald@{__version__}",
        environment=settings.sentry_environment,
        send_default_pii=False,
        include_local_variables=False,
        include_source_context=False,
        max_breadcrumbs=0,
        default_integrations=False,
        auto_enabling_integrations=False,
        before_send=Scrubber(settings.secret_values()),  # type: ignore[arg-type]
    )
    _enabled = True
    log.info("reporting.enabled", environment=settings.sentry_environment)


def report_exception(exc: BaseException) -> None:
    """Send `exc` to Sentry with the ids bound in this context; a no-op when off."""
    if not _enabled:
        return
    import sentry_sdk

    bound = structlog.contextvars.get_contextvars()
    with sentry_sdk.new_scope() as scope:
        for name in _TAGS:
            if bound.get(name) is not None:
                scope.set_tag(name, str(bound[name]))
        scope.capture_exception(exc)


def flush_reports(timeout: float = 2.0) -> None:
    """Wait (in a thread) for queued events to be sent, at shutdown."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.flush(timeout=timeout)
