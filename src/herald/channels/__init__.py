"""The provider layer: one module per channel behind one small interface.

`open_providers(settings)` gives the provider of each channel (`email`, `sms`, `push`,
`whatsapp`); each has `async send(message) -> ProviderResult` and raises `TransientError`
(retry later) or `PermanentError` (do not retry).
"""

from herald.channels.base import (
    AddressGone,
    Message,
    PermanentError,
    Provider,
    ProviderError,
    ProviderResult,
    TransientError,
)
from herald.channels.registry import open_providers

__all__ = [
    "AddressGone",
    "Message",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderResult",
    "TransientError",
    "open_providers",
]
