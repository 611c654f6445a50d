"""msgpack job serialization: jobs carry only ids and numbers, never pickled objects.

arq's default serializer is pickle, which lets anyone who can write to Redis run code in the
worker. msgpack cannot encode arbitrary objects; anything unknown in a job *result* (an
exception instance, say) is stored as its `repr`.
"""

from __future__ import annotations

from typing import Any

import msgpack


def _fallback(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return repr(value)


def serialize(value: dict[str, Any]) -> bytes:
    return msgpack.packb(value, default=_fallback, use_bin_type=True)  # type: ignore[no-any-return]


def deserialize(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)  # type: ignore[no-any-return]
