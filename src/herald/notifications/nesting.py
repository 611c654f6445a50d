"""The nesting limit for free-form JSON (`metadata`), checked without recursion.

Deeply nested input is a denial-of-service tool: recursive decoders and converters overflow
the stack (a 500) or spend seconds on one request. Herald accepts at most `MAX_DEPTH` levels
of containers inside a field's value, and checks it twice, both iteratively:

- `too_deep_in_body` scans the raw request bytes before anything decodes them (REST), and
  names the field where the limit is passed;
- `depth_exceeds` walks an already decoded value (any interface, in the use case's rules).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32

# Structural bytes, and the rest of a string after its opening quote. Each byte of the body is
# looked at once: a string is skipped from its opening quote to its closing one, and a string
# that never closes ends the scan (the body is not JSON; the decoder will say so). Matching
# strings with one pattern from every quote instead costs O(n^2) on `"\"\"\"...` unclosed.
_STRUCTURE = re.compile(rb'["\[\]{}:,]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_QUOTE, _COLON, _COMMA, _OPEN_ARRAY, _OPEN_OBJECT = b'"'[0], b":"[0], b","[0], b"["[0], b"{"[0]


def too_deep_in_body(body: bytes, envelope: int) -> list[str | int] | None:
    """The path to where `body` nests more than `MAX_DEPTH` containers inside a field, or None.

    `envelope` is how many path steps lead to a field (1 for `{"metadata": ...}`, 3 for
    `{"notifications": [{"metadata": ...}]}`): the body may nest `envelope + MAX_DEPTH` deep.
    Malformed JSON is left to the decoder. Linear in the body; bodies with few brackets are
    not scanned at all.
    """
    limit = envelope + MAX_DEPTH
    if body.count(b"[") + body.count(b"{") <= limit:
        return None
    # One entry per open container: the key (raw JSON string) or index being read in it.
    path: list[bytes | int] = []
    kinds: list[int] = []
    last_string = b'""'
    position = 0
    while (match := _STRUCTURE.search(body, position)) is not None:
        first = body[match.start()]
        position = match.end()
        if first == _QUOTE:
            end = _STRING_REST.match(body, position)
            if end is None:
                return None
            last_string = body[match.start() : end.end()]
            position = end.end()
        elif first == _COLON:
            if path:
                path[-1] = last_string
        elif first == _COMMA:
            if kinds and kinds[-1] == _OPEN_ARRAY:
                path[-1] = int(path[-1]) + 1
        elif first in (_OPEN_ARRAY, _OPEN_OBJECT):
            if len(kinds) == limit:
                return [_key(step) if isinstance(step, bytes) else step for step in path]
            kinds.append(first)
            path.append(0 if first == _OPEN_ARRAY else b'""')
        elif kinds:
            kinds.pop()
            path.pop()
    return None


def _key(raw: bytes) -> str:
    try:
        key = json.loads(raw)
    except ValueError:
        key = raw.decode("utf-8", "replace").strip('"')
    return str(key)


def field_name(path: list[str | int], envelope: int) -> str:
    """`metadata`, `notifications[3].metadata`, or `(body)` when the path leads to no field."""
    steps = path[:envelope]
    if len(steps) < envelope or not isinstance(steps[-1], str):
        return "(body)"
    name = ""
    for step in steps:
        if isinstance(step, int):
            name += f"[{step}]"
        else:
            name += f".{step}" if name else step
    return name


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when `value` holds containers nested more than `limit` deep (iteratively)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list | tuple):
            children = current
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
