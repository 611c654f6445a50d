"""What a client saves as a template, and the rules it must meet before it is stored.

The wire shape of `PUT /v1/templates/{key}` (the same in GraphQL and gRPC):
`{"category", "critical", "default_locale", "locales": {locale: {channel: content}}}`, with
content per channel: email `subject` + `text` and/or `html`; sms `body`; push `title`, `body`
and/or `data` (string values); whatsapp `text`, or a `template` (name, language and
parameters). Every text is a Jinja2 template; a template that does not compile is refused
with the field and the line. Limits: MAX_LOCALES variants, MAX_TEMPLATE_CHARS of template
text in all, and a field as long as `rendering.MAX_FIELD_CHARS`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec

from herald.errors import FieldProblem
from herald.messages.rendering import check_source
from herald.messages.templates import CONTENT_FIELDS, HTML_FIELD, RenderedContent, TemplateVersion
from herald.notifications.validation import PUSH_MAX_DATA_BYTES
from herald.vocabulary import CHANNELS

MAX_LOCALES = 50
MAX_TEMPLATE_CHARS = 256 * 1024
MAX_KEY = 100
MAX_CATEGORY = 100
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
CATEGORY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
# A BCP 47-like tag: "en", "de-AT", "zh-Hant-TW", "pt_BR".
LOCALE_PATTERN = r"^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8}){0,3}$"

_KEY = re.compile(KEY_PATTERN)
_CATEGORY = re.compile(CATEGORY_PATTERN)
_LOCALE = re.compile(LOCALE_PATTERN)

Source = Annotated[str, msgspec.Meta(description="A Jinja2 template.")]


class EmailContent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An email: a subject, and a text part, an HTML part (autoescaped) or both."""

    subject: Source
    text: Source | None = None
    html: Source | None = None


class SmsContent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    body: Source


class PushContent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A push: a title, a body and/or a data payload (each value a template)."""

    title: Source | None = None
    body: Source | None = None
    data: dict[str, Source] | None = None


class WhatsAppTemplateContent(msgspec.Struct, forbid_unknown_fields=True):
    """An approved WhatsApp template: its name and language, and templated parameters."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    language: Annotated[str, msgspec.Meta(min_length=1, max_length=35)]
    parameters: list[Source] = []


class WhatsAppContent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A WhatsApp message: `text`, or an approved `template` (one of the two)."""

    text: Source | None = None
    template: WhatsAppTemplateContent | None = None


class LocaleContent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One locale's content, per channel (a channel left out is not in the template)."""

    email: EmailContent | None = None
    sms: SmsContent | None = None
    push: PushContent | None = None
    whatsapp: WhatsAppContent | None = None


assert tuple(LocaleContent.__struct_fields__) == CHANNELS, "one field per channel"


class TemplateInput(msgspec.Struct, forbid_unknown_fields=True):
    """A template to save: every save is a new version."""

    default_locale: Annotated[
        str, msgspec.Meta(description="The locale used when no other fits.", examples=["en"])
    ]
    locales: Annotated[
        dict[str, LocaleContent],
        msgspec.Meta(description="Locale -> channel -> content; `default_locale` is one of them."),
    ]
    category: Annotated[
        str | None,
        msgspec.Meta(description="What recipients opt out of (`marketing`).", examples=["account"]),
    ] = None
    critical: Annotated[
        bool, msgspec.Meta(description="Sent despite opt-outs and quiet hours.")
    ] = False


class PreviewRecipient(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A recipient given inline: what a template sees as `recipient`."""

    id: str | None = None
    email: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] = {}


class PreviewInput(msgspec.Struct, forbid_unknown_fields=True):
    """What to render a template with: data, a recipient, a locale, the channels."""

    data: Annotated[dict[str, Any], msgspec.Meta(description="The template's variables.")] = {}
    recipient: Annotated[
        str | PreviewRecipient | None,
        msgspec.Meta(
            description="A stored recipient's id, or a recipient given inline "
            "(`recipient.*` in the template)."
        ),
    ] = None
    locale: Annotated[
        str | None,
        msgspec.Meta(description="The locale to render; else the recipient's, else the default."),
    ] = None
    channels: Annotated[
        list[str] | None,
        msgspec.Meta(description="Only these channels (default: every channel of the locale)."),
    ] = None
    version: Annotated[
        int | None, msgspec.Meta(description="An older version (default: the current one).")
    ] = None


class TemplateOut(msgspec.Struct, omit_defaults=False):
    """A saved template version."""

    key: str
    version: int
    category: str | None
    critical: bool
    default_locale: str
    locales: dict[str, LocaleContent]
    created_at: datetime


class TemplatePage(msgspec.Struct):
    """Templates (their current versions), by key; `next_cursor` reads the next page."""

    items: list[TemplateOut]
    next_cursor: str | None


class PreviewOut(msgspec.Struct):
    """A template rendered for a preview: the version, the locale used, each channel."""

    key: str
    version: int
    locale_used: str
    channels: list[RenderedContent]


def to_out(template: TemplateVersion) -> TemplateOut:
    return TemplateOut(
        key=template.key,
        version=template.version,
        category=template.category,
        critical=template.critical,
        default_locale=template.default_locale,
        locales=msgspec.convert(template.locales, dict[str, LocaleContent]),
        created_at=template.created_at,
    )


def stored_locales(item: TemplateInput) -> dict[str, dict[str, Any]]:
    """The locales as stored (JSON, absent fields left out)."""
    return msgspec.to_builtins(item.locales)  # type: ignore[no-any-return]


def check_key(key: str) -> list[FieldProblem]:
    if not _KEY.match(key):
        return [
            FieldProblem(
                "template_key",
                f"must be 1 to {MAX_KEY} characters of A-Z a-z 0-9 _ . - (starting with a "
                "letter or digit)",
            )
        ]
    return []


def validate_template(key: str, item: TemplateInput) -> list[FieldProblem]:
    """Every problem of a template to save (compile errors with their line), at once."""
    problems = check_key(key)

    def add(field: str, message: str) -> None:
        problems.append(FieldProblem(field, message))

    if item.category is not None and not _CATEGORY.match(item.category):
        add("category", f"must be 1 to {MAX_CATEGORY} characters of A-Z a-z 0-9 _ . -")
    if not item.locales:
        add("locales", "must have at least one locale")
    elif len(item.locales) > MAX_LOCALES:
        add("locales", f"has more than {MAX_LOCALES} locales")
    elif item.default_locale not in item.locales:
        add("default_locale", f"{item.default_locale[:40]!r} is not one of the locales")
    total = 0
    for locale, variant in list(item.locales.items())[:MAX_LOCALES]:
        where = f"locales.{locale}"
        if not _LOCALE.match(locale):
            add(where, "is not a locale tag like en, de-AT or pt_BR")
            continue
        channels = msgspec.to_builtins(variant)
        if not channels:
            add(where, "has no channel (email, sms, push or whatsapp)")
        for channel, content in channels.items():
            _check_required(channel, content, f"{where}.{channel}", add)
            nul = _first_nul(content)
            if nul is not None:  # Postgres text (and JSONB) cannot hold one
                add(f"{where}.{channel}{nul}", "must not contain NUL characters")
                continue
            for field, source, html in _sources(channel, content):
                total += len(source)
                problem = check_source(source, html=html)
                if problem is not None:
                    add(f"{where}.{channel}.{field}", problem)
    if total > MAX_TEMPLATE_CHARS:
        add("locales", f"hold more than {MAX_TEMPLATE_CHARS} characters of template text")
    return problems


def _check_required(channel: str, content: dict[str, Any], where: str, add: Any) -> None:
    texts = [name for name in CONTENT_FIELDS[channel] if content.get(name)]
    if channel == "email" and not ({"text", "html"} & set(texts)):
        add(where, "needs a text or an html part")
    elif channel == "push":
        if not texts and not content.get("data"):
            add(where, "needs a title, a body or data")
        data = content.get("data") or {}
        if len(msgspec.json.encode(data)) > PUSH_MAX_DATA_BYTES:
            add(f"{where}.data", f"is larger than {PUSH_MAX_DATA_BYTES} bytes")
    elif channel == "whatsapp" and (content.get("text") is None) == (
        content.get("template") is None
    ):
        add(where, "needs exactly one of text or template")
    for name in CONTENT_FIELDS[channel]:
        if content.get(name) is not None and not content[name].strip():
            add(f"{where}.{name}", "must not be blank")


def _first_nul(value: Any, path: str = "") -> str | None:
    """The path of the first key or string holding a NUL character (content is shallow)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    if isinstance(value, (dict, list)):
        for key, inner in items:
            step = f".{key}" if isinstance(key, str) else f"[{key}]"
            if isinstance(key, str) and "\x00" in key:
                return path + step
            found = _first_nul(inner, path + step)
            if found is not None:
                return found
    return None


def _sources(channel: str, content: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(field path, template text, autoescaped) of every template text of one channel."""
    found = [
        (name, content[name], (channel, name) == HTML_FIELD)
        for name in CONTENT_FIELDS[channel]
        if content.get(name) is not None
    ]
    for key, value in (content.get("data") or {}).items():
        found.append((f"data.{key}", value, False))
    spec = content.get("template") or {}
    for i, value in enumerate(spec.get("parameters", [])):
        found.append((f"template.parameters[{i}]", value, False))
    return found
