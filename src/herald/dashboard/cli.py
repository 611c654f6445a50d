"""`herald dashboard hash-password`: make the DASHBOARD_PASSWORD_HASH for the dashboard user."""

from __future__ import annotations

import sys

import click

from herald.dashboard.security import hash_password

MIN_LENGTH = 12


@click.group()
def dashboard() -> None:
    """The queue dashboard (served at DASHBOARD_PATH when DASHBOARD_USERNAME is set)."""


@dashboard.command("hash-password")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (for scripts) instead of a prompt.",
)
def hash_password_command(password_stdin: bool) -> None:
    """Print an scrypt hash of a password, for DASHBOARD_PASSWORD_HASH.

    The password is asked for twice without echo (or read from stdin), never taken as an
    argument, so it stays out of shell history and the process list.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_LENGTH:
        raise click.UsageError(f"use a password of at least {MIN_LENGTH} characters")
    click.echo(hash_password(password))
