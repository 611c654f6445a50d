"""What the dashboard's handlers share within one app: its settings, keys, templates and cache.

Built once per `create_app` (so per process), and reached from guards and handlers through the
route's `opt["dashboard"]`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import structlog

from herald.config import Settings
from herald.dashboard.overview import OverviewCache
from herald.dashboard.rendering import Renderer
from herald.dashboard.security import Credentials, SessionSigner

log = structlog.get_logger()

SESSION_COOKIE = "herald_dashboard"
LOGIN_COOKIE = "herald_dashboard_login"


@dataclass
class Dashboard:
    settings: Settings
    base: str
    credentials: Credentials
    signer: SessionSigner
    renderer: Renderer
    overview: OverviewCache

    @property
    def read_only(self) -> bool:
        return self.settings.dashboard_read_only

    @classmethod
    def from_settings(cls, settings: Settings) -> Dashboard:
        """Raises `ValueError` naming the setting when the password hash is missing or bad."""
        encoded = settings.dashboard_password_hash.get_secret_value()
        if not encoded:
            raise ValueError(
                "DASHBOARD_PASSWORD_HASH is required when DASHBOARD_USERNAME is set "
                "(make one with `herald dashboard hash-password`)"
            )
        try:
            credentials = Credentials(settings.dashboard_username, encoded)
        except ValueError as exc:
            raise ValueError(f"DASHBOARD_PASSWORD_HASH is not valid: {exc}") from None
        secret = settings.dashboard_secret_key.get_secret_value().encode()
        if not secret:
            secret = secrets.token_bytes(32)
            log.warning(
                "dashboard.ephemeral_secret_key",
                detail="DASHBOARD_SECRET_KEY is empty: sessions are signed with a random key of "
                "this process, so they end when it restarts and another replica does not "
                "accept them; set the same DASHBOARD_SECRET_KEY on every replica",
            )
        base = settings.dashboard_path.rstrip("/")
        return cls(
            settings=settings,
            base=base,
            credentials=credentials,
            signer=SessionSigner(secret, credentials),
            renderer=Renderer(base, settings.dashboard_refresh_seconds),
            overview=OverviewCache(settings.dashboard_refresh_seconds),
        )

    def url(self, path: str = "", **query: Any) -> str:
        params = {key: value for key, value in query.items() if value not in (None, "")}
        return f"{self.base}{path}" + (f"?{urlencode(params)}" if params else "")

    def safe_next(self, target: str | None) -> str:
        """`target` if it is a dashboard page of this origin, else the overview (no open
        redirect)."""
        if (
            target
            and (target == self.base or target.startswith((f"{self.base}/", f"{self.base}?")))
            and "//" not in target
            and "\\" not in target
            and target.isprintable()
            and not target.startswith(f"{self.base}/login")
        ):
            return target
        return self.base or "/"
