"""Templates as the rest of Herald uses them: load a version, pick its locale, render it.

A `TemplateVersion` is one saved version of a client's template (every save adds one; see
`template_store`). `render` turns one channel of it into `RenderedContent`, exactly the
content fields of a `NotificationInput` for that channel, so a message's notification carries
its final content and is delivered as any other. Rendering is in Jinja2's sandbox with strict
undefined variables (`herald.messages.rendering`); a missing variable is a `ValidationFailed`
naming it (`data.name`: "undefined variable 'name' in email.subject").

Locale choice: the requested (or the recipient's) locale, then its language ("de-AT" ->
"de"), then the template's `default_locale`; matching ignores case.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.models import Template as TemplateRow
from herald.errors import FieldProblem, ValidationFailed
from herald.messages.rendering import RenderError, render_field
from herald.notifications.model import WhatsAppTemplate
from herald.vocabulary import CHANNELS, Channel

# Per channel: a template field -> the `NotificationInput` field it renders into. Push `data`
# and the WhatsApp `template` are rendered value by value beside these.
CONTENT_FIELDS: dict[str, dict[str, str]] = {
    Channel.EMAIL: {"subject": "subject", "text": "body", "html": "html"},
    Channel.SMS: {"body": "body"},
    Channel.PUSH: {"title": "subject", "body": "body"},
    Channel.WHATSAPP: {"text": "body"},
}
# The one field rendered with HTML autoescaping.
HTML_FIELD = (Channel.EMAIL, "html")


class TemplateVersion(msgspec.Struct, frozen=True):
    """One saved version; `locales` is locale -> channel -> content, as saved."""

    key: str
    version: int
    category: str | None
    critical: bool
    default_locale: str
    locales: dict[str, dict[str, Any]]
    created_at: datetime


class RenderedContent(msgspec.Struct, frozen=True, omit_defaults=True):
    """One channel rendered: the content fields of its `NotificationInput`."""

    channel: str
    locale_used: str
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    data: dict[str, str] | None = None
    template: WhatsAppTemplate | None = None


def from_row(row: Any) -> TemplateVersion:
    return TemplateVersion(
        key=row.key,
        version=row.version,
        category=row.category,
        critical=row.critical,
        default_locale=row.default_locale,
        locales=row.locales,
        created_at=row.created_at,
    )


_COLUMNS = (
    TemplateRow.key,
    TemplateRow.version,
    TemplateRow.category,
    TemplateRow.critical,
    TemplateRow.default_locale,
    TemplateRow.locales,
    TemplateRow.created_at,
)


async def load_current(
    connection: AsyncConnection, api_key_id: uuid.UUID, key: str
) -> TemplateVersion | None:
    """The latest version of the key's template, or None (never saved, or deleted)."""
    return await load_version(connection, api_key_id, key, None)


async def load_version(
    connection: AsyncConnection, api_key_id: uuid.UUID, key: str, version: int | None
) -> TemplateVersion | None:
    """Version `version` (None: the latest) of a template that is not deleted, or None."""
    query = select(*_COLUMNS).where(
        TemplateRow.api_key_id == api_key_id,
        TemplateRow.key == key,
        TemplateRow.deleted_at.is_(None),
    )
    if version is not None:
        query = query.where(TemplateRow.version == version)
    row = (await connection.execute(query.order_by(TemplateRow.version.desc()).limit(1))).first()
    return None if row is None else from_row(row)


def choose_locale(template: TemplateVersion, locale: str | None) -> str:
    """The locale variant to use for `locale` (exact, then its language, then the default)."""
    if locale:
        by_lower = {name.lower(): name for name in template.locales}
        wanted = locale.lower().replace("_", "-")
        for candidate in (wanted, wanted.split("-", 1)[0]):
            if candidate in by_lower:
                return by_lower[candidate]
    return template.default_locale


def channels_of(template: TemplateVersion, locale: str | None) -> list[str]:
    """The channels the chosen locale variant has content for, in vocabulary order."""
    variant = template.locales[choose_locale(template, locale)]
    return [channel for channel in CHANNELS if variant.get(channel) is not None]


RECIPIENT_FIELDS = ("id", "email", "phone", "whatsapp", "locale", "timezone", "data")


def recipient_variables(recipient: Any) -> dict[str, Any]:
    """What a template sees as `recipient` for a stored recipient (`recipients.Recipient`):
    its id, addresses, locale, timezone and custom data."""
    return {name: getattr(recipient, name) for name in RECIPIENT_FIELDS}


def variables_of(data: Mapping[str, Any], recipient: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a template sees: the data's keys, and `recipient` when there is one (it wins over
    a data key of that name)."""
    variables = dict(data)
    if recipient is not None:
        variables["recipient"] = dict(recipient)
    return variables


def render(
    template: TemplateVersion,
    channel: str,
    locale: str | None,
    data: Mapping[str, Any],
    recipient: Mapping[str, Any] | None,
) -> RenderedContent:
    """Render one channel of the chosen locale variant; ValidationFailed when it cannot be
    (a missing variable names it)."""
    used = choose_locale(template, locale)
    content = template.locales[used].get(channel)
    if content is None:
        message = f"template {template.key!r} has no {channel} content for locale {used!r}"
        raise ValidationFailed(message, problems=[FieldProblem("channel", message)])
    variables = variables_of(data, recipient)
    fields: dict[str, Any] = {}
    for name, target in CONTENT_FIELDS[channel].items():
        source = content.get(name)
        if source is not None:
            html = (channel, name) == HTML_FIELD
            fields[target] = _render(source, variables, f"{channel}.{name}", html=html)
    if content.get("data") is not None:
        fields["data"] = {
            key: _render(value, variables, f"{channel}.data.{key}")
            for key, value in content["data"].items()
        }
    if content.get("template") is not None:
        spec = content["template"]
        parameters = [
            _render(value, variables, f"{channel}.template.parameters[{i}]")
            for i, value in enumerate(spec.get("parameters", []))
        ]
        fields["template"] = WhatsAppTemplate(
            name=spec["name"], language=spec["language"], parameters=parameters
        )
    return RenderedContent(channel=channel, locale_used=used, **fields)


def _render(source: str, variables: Mapping[str, Any], where: str, *, html: bool = False) -> str:
    try:
        return render_field(source, variables, html=html)
    except RenderError as exc:
        if exc.variable is None:
            problem = FieldProblem("template", f"{where}: {exc.message}")
        elif exc.variable.startswith("?."):
            problem = FieldProblem("data", f"{exc.message} in {where}")
        else:
            problem = FieldProblem(f"data.{exc.variable}", f"{exc.message} in {where}")
        raise ValidationFailed(f"{problem.field}: {problem.message}", problems=[problem]) from None
