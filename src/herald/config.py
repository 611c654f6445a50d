"""Herald's settings: one typed class, read from the environment and an optional `.env`.

Every field maps to the upper-case environment variable of the same name (`port` is `PORT`).
Bad values stop start-up with one line per problem naming the variable and what it accepts
(see `SettingsError`), never a traceback.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from herald.redis_connection import check_redis_url, redis_url_secrets, safe_redis_url

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_RATE_PERIODS |= {"h": 3600, "hour": 3600}
_PASSWORD_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$")


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"
    AUTO = "auto"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class RateLimit:
    """A rate such as `10/s` or `600/min`: `limit` events per `period` seconds."""

    def __init__(self, limit: int, period: int) -> None:
        self.limit = limit
        self.period = period

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        match = _RATE.match(text)
        if match is None or int(match.group(1)) <= 0:
            raise ValueError(f"expected a rate such as 10/s, 600/min or 1000/h, got {text!r}")
        return cls(int(match.group(1)), _RATE_PERIODS[match.group(2)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RateLimit) and (self.limit, self.period) == (
            other.limit,
            other.period,
        )

    def __hash__(self) -> int:
        return hash((self.limit, self.period))

    def __repr__(self) -> str:
        return f"RateLimit({self.limit}/{self.period}s)"


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _comma_mapping(value: Any) -> Any:
    """Parse `email=20,sms=5` into a dict; anything else goes to pydantic as it is."""
    if not isinstance(value, str):
        return value
    result: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected queue=value pairs separated by commas, got {item!r}")
        result[key.strip()] = raw.strip()
    return result


def _rate(value: Any) -> Any:
    if isinstance(value, str):
        return RateLimit.parse(value) if value.strip() else None
    return value


class Settings(BaseSettings):
    """Everything an operator can set. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        arbitrary_types_allowed=True,
    )

    # -- process ----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 in containers).")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    enable_api: bool = Field(True, description="Serve the public API (/v1) and the dashboard.")
    enable_workers: bool = Field(True, description="Run the delivery worker loops in-process.")
    enable_grpc: bool = Field(
        True, description="Serve gRPC (herald.v1.NotificationService) too, when ENABLE_API is on."
    )
    grpc_host: str = Field(
        "127.0.0.1", description="Interface gRPC listens on (0.0.0.0 in containers)."
    )
    grpc_port: int = Field(50051, ge=1, le=65535, description="gRPC port.")
    worker_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma list of queues this process consumes; empty means all of them.",
    )
    job_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Python modules to import for their @job functions (comma list).",
    )
    shutdown_grace_seconds: float = Field(
        20.0, ge=0, description="How long running jobs may finish after SIGTERM."
    )
    auto_migrate: bool = Field(True, description="Apply pending migrations on `herald serve`.")
    instance_name: str = Field(
        "", description="Name shown for this process in heartbeats; defaults to host:pid."
    )

    # -- connections ----------------------------------------------------------------------------
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the Postgres database (asyncpg driver); empty: Herald"
        " runs an embedded Postgres of its own (development, demos, a single small host).",
    )
    database_pool_size: int = Field(
        10,
        ge=1,
        description="Postgres connections per pool, plus as many overflow (a unified process"
        " has two pools: the API's, opened at start-up, and the workers').",
    )
    database_pool_mode: Literal["session", "transaction"] = Field(
        "session",
        description="transaction when DATABASE_URL is a pooler in transaction mode (PgBouncer"
        " pool_mode=transaction, Supavisor, RDS Proxy...): no prepared statements are kept and"
        " no session state is relied on; session for Postgres itself or a session pooler.",
    )
    database_timeout_seconds: float = Field(
        5.0, gt=0, description="Connect and statement timeout; past it the API answers 503."
    )
    redis_url: str = Field(
        "",
        description="Redis URL for the queues, the event feed and the rate limits: redis://,"
        " rediss:// (TLS), unix://, or redis+sentinel://host:26379,host2:26379/service/db"
        " (rediss+sentinel:// for TLS); empty: Herald runs an embedded Valkey.",
    )
    herald_data_dir: str = Field(
        "",
        description="Where the embedded servers keep their data (default: the user data folder,"
        " e.g. ~/.local/share/herald; /var/lib/herald for root).",
    )

    # -- logging ---------------------------------------------------------------------------------
    log_level: LogLevel = Field(
        LogLevel.INFO, description="DEBUG, INFO, WARNING or ERROR (any case)."
    )
    log_format: LogFormat = Field(
        LogFormat.AUTO, description="json, console, or auto (json unless stdout is a terminal)."
    )

    # -- worker runtime ---------------------------------------------------------------------------
    worker_concurrency: int = Field(10, ge=1, description="Jobs run at once per queue.")
    job_timeout_seconds: float = Field(60.0, gt=0, description="Default job timeout.")
    queue_concurrency: Annotated[dict[str, Annotated[int, Field(ge=1)]], NoDecode] = Field(
        default_factory=dict, description="Per-queue concurrency, e.g. `email=20,sms=5`."
    )
    queue_job_timeout: Annotated[dict[str, Annotated[float, Field(gt=0)]], NoDecode] = Field(
        default_factory=dict, description="Per-queue job timeout in seconds, e.g. `email=30`."
    )
    poll_delay_seconds: float = Field(
        0.05,
        gt=0,
        le=5,
        description="How often a worker looks for jobs enqueued by other processes.",
    )
    lag_guard_seconds: float = Field(
        0.025,
        ge=0,
        description="Event-loop lag above which, while the API serves requests, the workers "
        "take no new jobs until it falls below half (0: measure only).",
    )
    api_first_worker_share: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of their slots the workers keep to while the API serves and a "
        "unified process's CPU is saturated, e.g. 0.5 (1: never held back this way).",
    )
    worker_restart_max_seconds: float = Field(
        30.0, gt=0, description="Cap of the backoff between restarts of a failed worker loop."
    )

    # -- delivery ---------------------------------------------------------------------------------
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts per notification.")
    retry_base_seconds: float = Field(2.0, gt=0, description="First retry delay (before jitter).")
    retry_factor: float = Field(2.0, ge=1, description="Growth of the retry delay per attempt.")
    retry_max_seconds: float = Field(300.0, gt=0, description="Cap of one retry delay.")
    lease_margin_seconds: float = Field(
        5.0, ge=0, description="Added to the job timeout to make a delivery's lease."
    )
    delivery_batch_max: int = Field(
        200,
        ge=1,
        le=5000,
        description="Most deliveries' claims (or outcomes) written in one statement.",
    )
    reconcile_interval_seconds: float = Field(
        10.0, gt=0, description="How often the reconciler looks for lost or stuck deliveries."
    )
    reconcile_grace_seconds: float = Field(
        30.0, ge=0, description="How late a due notification may be before it is re-enqueued."
    )
    recovery_seconds: float = Field(
        10.0,
        ge=4.0,
        description="Deliveries in progress in a worker process that stops (SIGKILL, OOM, a "
        "lost node) are sent again within this long, without waiting for their leases: it "
        "beats at least every fifth of it, is dead after 0.6 of it in silence, looked for "
        "every fifth of it.",
    )
    idempotency_ttl_seconds: int = Field(86_400, ge=60, description="How long keys are kept.")
    submission_group_limit: int = Field(
        100,
        ge=1,
        le=1000,
        description="Most single submissions committed together in one transaction (group "
        "commit); 1 commits each alone.",
    )
    submission_group_wait_ms: float = Field(
        1.0,
        ge=0,
        le=50,
        description="How long a group of single submissions may wait for more that are already "
        "arriving (never when the server is idle); 0: only those that came during a commit.",
    )
    sentry_dsn: SecretStr = Field(
        SecretStr(""), description="Report unexpected errors to this Sentry DSN (the sentry extra)."
    )
    sentry_environment: str = Field("production", description="Sentry's environment tag.")
    max_memory_mb: int | None = Field(
        None,
        ge=64,
        description="Drain and exit (status 75) when RSS stays above this many MiB; empty: off.",
    )
    retention_days: int = Field(
        30,
        ge=0,
        le=36_500,
        description="Finished notifications (and their events) older than this many days are "
        "deleted; 0 keeps them forever.",
    )
    retention_interval_seconds: float = Field(
        60.0, gt=0, description="How often the retention pass runs (one replica at a time)."
    )
    provider_timeout_seconds: float = Field(10.0, gt=0, description="HTTP/SMTP call timeout.")

    # -- providers -----------------------------------------------------------------------------
    email_provider: Literal["log", "smtp"] = Field("log", description="log or smtp.")
    smtp_host: str = Field("", description="SMTP server host.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str = Field("", description="SMTP user (empty: no AUTH).")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_implicit_tls: bool = Field(
        False, description="Speak TLS from the first byte (SMTPS, usually port 465)."
    )
    email_from: str = Field("herald@localhost", description="From address of emails.")

    sms_provider: Literal["log", "twilio"] = Field("log", description="log or twilio.")
    twilio_account_sid: str = Field("", description="Twilio account SID.")
    twilio_auth_token: SecretStr = Field(SecretStr(""), description="Twilio auth token.")
    twilio_from: str = Field("", description="Sending number (E.164) or messaging service.")
    twilio_base_url: str = Field("https://api.twilio.com", description="Twilio API base URL.")

    push_provider: Literal["log", "fcm"] = Field("log", description="log or fcm.")
    fcm_project_id: str = Field("", description="Firebase project id.")
    fcm_credentials_file: str = Field("", description="Path of the service-account JSON.")
    fcm_base_url: str = Field("https://fcm.googleapis.com", description="FCM API base URL.")

    whatsapp_provider: Literal["log", "meta"] = Field("log", description="log or meta.")
    whatsapp_phone_number_id: str = Field("", description="WhatsApp Business phone number id.")
    whatsapp_access_token: SecretStr = Field(SecretStr(""), description="Cloud API token.")
    whatsapp_api_version: str = Field("v21.0", description="Graph API version.")
    whatsapp_base_url: str = Field(
        "https://graph.facebook.com", description="WhatsApp Cloud API base URL."
    )

    email_rate_limit: Annotated[RateLimit | None, NoDecode] = Field(
        None, description="Sends allowed across all replicas, e.g. 10/s or 600/min."
    )
    sms_rate_limit: Annotated[RateLimit | None, NoDecode] = Field(None, description="As above.")
    push_rate_limit: Annotated[RateLimit | None, NoDecode] = Field(None, description="As above.")
    whatsapp_rate_limit: Annotated[RateLimit | None, NoDecode] = Field(
        None, description="As above."
    )

    # -- dashboard -------------------------------------------------------------------------------
    dashboard_path: str = Field("/dashboard", description="Where the dashboard is mounted.")
    dashboard_username: str = Field("", description="Dashboard user; empty turns it off.")
    dashboard_password_hash: SecretStr = Field(
        SecretStr(""), description="From `herald dashboard hash-password`."
    )
    dashboard_read_only: bool = Field(False, description="Show everything, allow no action.")
    dashboard_secret_key: SecretStr = Field(
        SecretStr(""),
        description="Signs session cookies; set the same value on every replica "
        "(empty: a random key per process, so sessions do not survive restarts).",
    )
    dashboard_refresh_seconds: float = Field(
        2.0, ge=0.5, le=60, description="How often the dashboard's live parts refresh."
    )

    # GraphQL at /graphql
    graphql_ide: bool = Field(False, description="Serve GraphiQL at /graphql (off: no IDE).")
    graphql_allow_get: bool = Field(
        False, description="Accept queries over GET (never mutations); off: POST only."
    )
    graphql_max_depth: int = Field(10, ge=2, le=100, description="Deepest selection allowed.")
    graphql_max_tokens: int = Field(
        2000, ge=100, le=100_000, description="Most tokens in one GraphQL document."
    )
    graphql_max_aliases: int = Field(
        15, ge=1, le=1000, description="Most aliases in one GraphQL document."
    )
    stream_heartbeat_seconds: float = Field(
        15.0, ge=0.1, le=300, description="Heartbeat of idle live streams (WebSocket, SSE)."
    )

    @field_validator(
        "email_rate_limit",
        "sms_rate_limit",
        "push_rate_limit",
        "whatsapp_rate_limit",
        mode="before",
    )
    @classmethod
    def _parse_rate(cls, value: Any) -> Any:
        return _rate(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: Any) -> Any:
        # Anything else stays as written, so the error message quotes the operator's value.
        if isinstance(value, str) and value.upper() in LogLevel.__members__:
            return value.upper()
        return value

    @field_validator("max_memory_mb", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("dashboard_password_hash")
    @classmethod
    def _hash_format(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text and not _PASSWORD_HASH.match(text):
            raise ValueError(
                "expected scrypt$n$r$p$salt$hash from `herald dashboard hash-password`"
            )
        return value

    @field_validator("worker_queues", "job_modules", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("queue_concurrency", "queue_job_timeout", mode="before")
    @classmethod
    def _split_mappings(cls, value: Any) -> Any:
        return _comma_mapping(value)

    @model_validator(mode="after")
    def _roles(self) -> Self:
        if not self.dashboard_path.startswith("/") or self.dashboard_path.rstrip("/") in (
            "",
            "/v1",
            "/health",
            "/metrics",
            "/schema",
        ):
            raise ValueError("DASHBOARD_PATH must be a path such as /dashboard, not a reserved one")
        if not (self.enable_api or self.enable_workers):
            raise ValueError(
                "ENABLE_API and ENABLE_WORKERS are both false: a process must have a role"
            )
        if self.smtp_starttls and self.smtp_implicit_tls:
            raise ValueError(
                "SMTP_STARTTLS and SMTP_IMPLICIT_TLS are both true: a server takes one or the"
                " other (587 usually STARTTLS, 465 implicit TLS)"
            )
        self._check_urls()
        required = {
            "smtp": ("smtp_host",),
            "twilio": ("twilio_account_sid", "twilio_auth_token", "twilio_from"),
            "fcm": ("fcm_project_id", "fcm_credentials_file"),
            "meta": ("whatsapp_phone_number_id", "whatsapp_access_token"),
        }
        for provider in (
            self.email_provider,
            self.sms_provider,
            self.push_provider,
            self.whatsapp_provider,
        ):
            for name in required.get(provider, ()):
                value = getattr(self, name)
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                    raise ValueError(f"{name.upper()} is required when the provider is {provider}")
        return self

    def _check_urls(self) -> None:
        if self.database_url:
            if not self.database_url.startswith("postgresql+asyncpg://"):
                raise ValueError("DATABASE_URL must start with postgresql+asyncpg://")
            try:
                url = make_url(self.database_url)
                _ = url.port
            except (ArgumentError, ValueError) as exc:
                raise ValueError(f"DATABASE_URL is not a URL Herald can use: {exc}") from None
            if not url.database:
                raise ValueError("DATABASE_URL must name a database (…/herald)")
        if self.redis_url:
            try:
                check_redis_url(self.redis_url)
            except ValueError as exc:
                raise ValueError(f"REDIS_URL {safe_redis_url(self.redis_url)}: {exc}") from None

    def rate_limit_for(self, channel: str) -> RateLimit | None:
        limit: RateLimit | None = getattr(self, f"{channel}_rate_limit", None)
        return limit

    def concurrency_for(self, queue: str) -> int:
        return self.queue_concurrency.get(queue, self.worker_concurrency)

    def job_timeout_for(self, queue: str) -> float:
        return self.queue_job_timeout.get(queue, self.job_timeout_seconds)

    def secret_values(self) -> list[str]:
        """Every credential these settings hold: the logs redact each one wherever it appears."""
        values = [
            getattr(self, name).get_secret_value()
            for name, info in type(self).model_fields.items()
            if info.annotation is SecretStr
        ]
        password = urlsplit(self.database_url).password
        if password:
            values.append(password)
        values += redis_url_secrets(self.redis_url)
        return [value for value in values if value]


class SettingsError(Exception):
    """Settings could not be loaded; `str()` is one line per problem, naming the variable."""


_FRIENDLY = {
    "bool_parsing": "expected true or false (1/0, yes/no and on/off also work)",
    "int_parsing": "expected a whole number",
    "float_parsing": "expected a number",
}


def _describe(error: Any) -> str:
    location = [str(part) for part in error["loc"] if not isinstance(part, int)]
    name = location[0].upper() if location else ""
    message = _FRIENDLY.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
    if name:
        given = error.get("input")
        secret = any(word in name for word in ("PASSWORD", "TOKEN", "SECRET"))
        shown = f"={given!r}" if isinstance(given, str | int | float | bool) and not secret else ""
        return f"invalid setting {name}{shown}: {message}"
    return f"invalid settings: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Load settings from the environment, raising `SettingsError` with a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError("\n".join(_describe(e) for e in exc.errors())) from None
