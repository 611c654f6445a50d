"""The template operations every interface calls: save, read, list, delete and preview.

Templates belong to an API key: another key's template is "not found", and an operator (the
dashboard) has none of its own. Every save is a new version; a delete hides every version
(numbering continues at the next save, so a message's recorded version never names other
content). A preview renders off the event loop, in a thread, since a template may be as
large as the limits allow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.auth.keys import Principal
from herald.errors import FieldProblem, InvalidInput, NotFound, ValidationFailed, summary
from herald.messages import template_store
from herald.messages.recipient_input import recipient_id_problem
from herald.messages.recipients import load_recipients
from herald.messages.template_input import (
    PreviewInput,
    PreviewOut,
    PreviewRecipient,
    TemplateInput,
    check_key,
    stored_locales,
    validate_template,
)
from herald.messages.templates import (
    RECIPIENT_FIELDS,
    RenderedContent,
    TemplateVersion,
    channels_of,
    choose_locale,
    load_version,
    recipient_variables,
    render,
)
from herald.notifications.validation import MAX_PAGE
from herald.vocabulary import CHANNELS

_ONLY_API_KEYS = "templates belong to an API key; an operator has none of its own"


@dataclass(frozen=True, slots=True)
class TemplatePageResult:
    items: list[TemplateVersion]
    next_cursor: str | None


class TemplateUseCases:
    """Bound to the API's Postgres pool (created once, in the lifespan)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def save_template(
        self, principal: Principal, key: str, item: TemplateInput
    ) -> TemplateVersion:
        """Store a new version; ValidationFailed naming every bad field (and line)."""
        owner = principal.api_key(_ONLY_API_KEYS)
        problems = validate_template(key, item)
        if problems:
            raise ValidationFailed(summary(problems), problems=problems)
        async with self._engine.begin() as connection:
            return await template_store.save_version(
                connection,
                owner,
                key,
                category=item.category,
                critical=item.critical,
                default_locale=item.default_locale,
                locales=stored_locales(item),
            )

    async def get_template(
        self, principal: Principal, key: str, version: int | None = None
    ) -> TemplateVersion:
        """The current version, or version `version`; NotFound when there is none."""
        owner = principal.api_key(_ONLY_API_KEYS)
        _check_key(key)
        if version is not None and version < 1:
            raise InvalidInput(
                "version must be 1 or more", problems=[FieldProblem("version", "must be ≥ 1")]
            )
        async with self._autocommit.connect() as connection:
            found = await load_version(connection, owner, key, version)
        if found is None:
            which = f"version {version} of " if version is not None else ""
            raise NotFound(f"no {which}template {key!r}")
        return found

    async def list_templates(
        self, principal: Principal, *, limit: int = 50, cursor: str | None = None
    ) -> TemplatePageResult:
        """The current version of every template, by key, a page at a time."""
        owner = principal.api_key(_ONLY_API_KEYS)
        if not 1 <= limit <= MAX_PAGE:
            message = f"must be between 1 and {MAX_PAGE}"
            raise InvalidInput(f"limit {message}", problems=[FieldProblem("limit", message)])
        async with self._autocommit.connect() as connection:
            items, next_cursor = await template_store.list_current(
                connection, owner, limit=limit, cursor=cursor
            )
        return TemplatePageResult(items, next_cursor)

    async def delete_template(self, principal: Principal, key: str) -> None:
        """Hide every version; NotFound when there is no such template."""
        owner = principal.api_key(_ONLY_API_KEYS)
        _check_key(key)
        async with self._engine.begin() as connection:
            if not await template_store.delete(connection, owner, key):
                raise NotFound(f"no template {key!r}")

    async def preview_template(
        self, principal: Principal, key: str, item: PreviewInput
    ) -> PreviewOut:
        """Render every channel of the chosen locale (or those asked for) with `item.data`
        and the recipient; ValidationFailed naming a missing variable."""
        template = await self.get_template(principal, key, item.version)
        recipient = await self._recipient(principal.api_key(_ONLY_API_KEYS), item.recipient)
        locale = item.locale or (recipient or {}).get("locale")
        available = channels_of(template, locale)
        wanted = item.channels if item.channels is not None else available
        unknown = [c for c in wanted if c not in CHANNELS]
        if unknown:
            message = f"{unknown[0][:20]!r} is not one of {', '.join(CHANNELS)}"
            raise ValidationFailed(message, problems=[FieldProblem("channels", message)])
        missing = [c for c in wanted if c not in available]
        if missing:
            used = choose_locale(template, locale)
            message = f"{', '.join(missing)} not in the template's {used!r} content"
            raise ValidationFailed(message, problems=[FieldProblem("channels", message)])
        channels = await asyncio.to_thread(
            _render_all, template, wanted, locale, item.data, recipient
        )
        return PreviewOut(
            key=template.key,
            version=template.version,
            locale_used=choose_locale(template, locale),
            channels=channels,
        )

    async def _recipient(
        self, owner: uuid.UUID, given: str | PreviewRecipient | None
    ) -> dict[str, Any] | None:
        """The `recipient` variables: a stored recipient's (by id), or the inline one's."""
        if given is None:
            return None
        if not isinstance(given, str):
            return {**dict.fromkeys(RECIPIENT_FIELDS), "data": {}, **msgspec.to_builtins(given)}
        # No stored recipient has such an id (they are checked when saved); a NUL in it would
        # not even reach Postgres as text.
        problem = recipient_id_problem(given)
        if problem is not None:
            raise ValidationFailed(
                f"recipient {problem}", problems=[FieldProblem("recipient", problem)]
            )
        async with self._autocommit.connect() as connection:
            found = await load_recipients(connection, owner, [given])
        if given not in found:
            raise NotFound(f"no recipient {given[:255]!r}")
        return recipient_variables(found[given])


def _render_all(
    template: TemplateVersion,
    channels: list[str],
    locale: str | None,
    data: Mapping[str, Any],
    recipient: Mapping[str, Any] | None,
) -> list[RenderedContent]:
    return [render(template, channel, locale, data, recipient) for channel in channels]


def _check_key(key: str) -> None:
    problems = check_key(key)
    if problems:
        raise InvalidInput(summary(problems), problems=problems)
