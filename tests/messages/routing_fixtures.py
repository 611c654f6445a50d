"""The alert template and fallback message the routing tests share."""

from __future__ import annotations

from typing import Any

ALERT: dict[str, Any] = {
    "category": "account",
    "default_locale": "en",
    "locales": {
        "en": {
            "push": {"title": "Sign-in", "body": "New sign-in, {{ name }}"},
            "sms": {"body": "New sign-in, {{ name }}"},
        }
    },
}
FALLBACK = {
    "template": "alert",
    "recipient": "user-42",
    "data": {"name": "Jane"},
    "routing": "fallback",
    "channels": ["push", "sms"],
}
