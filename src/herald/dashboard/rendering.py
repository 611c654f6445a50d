"""Jinja templates of the dashboard (package data), rendered into HTML responses.

The dashboard owns its Jinja environment instead of configuring one on the app, so it stays
self-contained: the API process without a dashboard user loads no templates at all. Every
dashboard response forbids caching and framing and allows only Herald's own scripts and
styles (no inline script: htmx's inline indicator style is turned off in `base.html`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Response

from herald.logging import mask_address

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _ago(value: datetime | float | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    at = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{math.floor(seconds)}s"
    elif seconds < 3600:
        text = f"{math.floor(seconds / 60)}m"
    elif seconds < 86400:
        text = f"{math.floor(seconds / 3600)}h {math.floor(seconds % 3600 / 60)}m"
    else:
        text = f"{math.floor(seconds / 86400)}d"
    return f"in {text}" if future else f"{text} ago"


def _redact(text: str | None, recipient: str) -> str:
    """Provider errors often quote the number or address: show it masked there too."""
    if not text:
        return ""
    return text.replace(recipient, mask_address(recipient)) if recipient else text


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class Renderer:
    def __init__(self, base_path: str, refresh_seconds: float) -> None:
        self.env = Environment(
            loader=PackageLoader("herald.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=_when, ago=_ago, mask=mask_address, redact=_redact, duration=_duration
        )
        self.env.globals.update(
            base=base_path,
            refresh_seconds=refresh_seconds,
            refresh_ms=int(refresh_seconds * 1000),
        )

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def response(
        self,
        template: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response[str]:
        return Response(
            self.render(template, **context),
            status_code=status_code,
            media_type=MediaType.HTML,
            headers={**SECURITY_HEADERS, **(headers or {})},
        )
