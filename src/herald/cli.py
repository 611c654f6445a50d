"""The `herald` command: serve, migrate, check (and the feature commands mounted below).

Every command loads the settings first; a bad setting prints one line per problem and exits
with status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url

from herald import __version__
from herald.config import Settings, SettingsError, load_settings

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"herald: {message}", err=True)
    sys.exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        for line in str(exc).splitlines():
            click.echo(f"herald: {line}", err=True)
        sys.exit(2)


def embedded_or_exit(settings: Settings, role: str, *, redis: bool = True) -> Settings:
    """`settings` with the embedded servers' URLs where DATABASE_URL / REDIS_URL are empty.

    `herald serve` runs them; other commands join the running serve's, or run them for the
    command's duration. Their notes go to the log (serve) or to stderr (commands, whose
    stdout may be captured, as in `KEY=$(herald keys create x)`).
    """
    if settings.database_url and (settings.redis_url or not redis):
        return settings
    from herald.embedded import EmbeddedError, use_embedded

    report = _log if role == "serve" else _note
    try:
        return use_embedded(settings, role=role, report=report, redis=redis)
    except EmbeddedError as exc:
        fail(str(exc))


def _log(level: str, event: str, message: str, **fields: Any) -> None:
    import structlog

    getattr(structlog.get_logger(), level)(event, detail=message, **fields)


def _note(level: str, event: str, message: str, **fields: Any) -> None:
    if level == "warning":
        click.echo(f"herald: {message}", err=True)


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_factory())


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


class _HeraldCommands(click.Group):
    """`herald`'s group: the features' commands (`keys`, `dashboard`, ...) join it when it is
    first asked for its commands, not at import, so a command module may import this one."""

    _mounted = False

    def _mount_features(self) -> None:
        if not self._mounted:
            from herald.features import cli_commands

            self._mounted = True
            for command in cli_commands():
                self.add_command(command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._mount_features()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._mount_features()
        return super().list_commands(ctx)


@click.group(cls=_HeraldCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="herald")
def cli() -> None:
    """Herald: send email, SMS, push and WhatsApp notifications, and deliver them.

    Settings come from environment variables (and an optional .env file); see the README.
    """


@cli.command()
@click.option("--host", help="Interface to listen on [env HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [env PORT, default 8000].")
@click.option("--reload", is_flag=True, help="Restart on code changes (development only).")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level [env LOG_LEVEL, default INFO].",
)
def serve(host: str | None, port: int | None, reload: bool, log_level: str | None) -> None:
    """Serve the API and run the delivery workers in one process.

    ENABLE_API=false or ENABLE_WORKERS=false split the roles; WORKER_QUEUES picks the queues
    this process consumes. Pending migrations are applied first unless AUTO_MIGRATE=false.
    SIGTERM drains: running jobs get SHUTDOWN_GRACE_SECONDS to finish.
    """
    import uvicorn

    from herald.app import create_app
    from herald.db.migrate import migrate
    from herald.logging import configure_logging
    from herald.server import HeraldServer

    settings = settings_or_exit(host=host, port=port, log_level=log_level and log_level.upper())
    configure_logging(settings)
    settings = embedded_or_exit(settings, "serve")
    # Build the app first: a bad setting is reported before anything touches the database.
    try:
        app = create_app(settings)
    except ValueError as exc:
        message = str(exc)
        fail(
            message if message.startswith("invalid setting") else f"invalid settings: {message}", 2
        )
    if settings.auto_migrate:
        try:
            run(lambda: migrate(settings))
        except Exception as exc:
            fail(
                f"cannot migrate the database at {safe_url(settings.database_url)}: "
                f"{describe_error(exc)}"
            )
    if reload:
        os.environ.update(
            HOST=settings.host,
            PORT=str(settings.port),
            LOG_LEVEL=settings.log_level.value,
            DATABASE_URL=settings.database_url,
            REDIS_URL=settings.redis_url,
        )
        uvicorn.run(
            "herald.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            reload=True,
            log_config=None,
        )
        return
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    try:
        HeraldServer(config, app).run()  # raises SystemExit(3) when start-up failed
    finally:
        status = app.state.get("exit_status")
        if status:  # the memory ceiling (75), or a ceiling refused at start-up (2)
            sys.exit(status)


@cli.command()
def migrate() -> None:
    """Create the database if needed and apply pending migrations (safe to run concurrently)."""
    from herald.db.migrate import migrate as apply_migrations
    from herald.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings)
    settings = embedded_or_exit(settings, "migrate", redis=False)
    try:
        applied = run(lambda: apply_migrations(settings))
    except Exception as exc:
        fail(f"cannot migrate {safe_url(settings.database_url)}: {describe_error(exc)}")
    click.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")


@cli.command()
def check() -> None:
    """Validate the settings and reach Postgres and Redis; exit non-zero on any problem."""
    from herald.checks import run_checks

    settings = embedded_or_exit(settings_or_exit(), "check")
    ok = run(lambda: run_checks(settings, click.echo))
    sys.exit(0 if ok else 1)


def main() -> None:
    cli(prog_name="herald")
