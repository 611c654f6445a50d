"""The `JSON` scalar, with the nesting limit applied before anything recurses into a value."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import ListValueNode, ObjectValueNode, ValueNode, value_from_ast_untyped

from herald.notifications import nesting


class TooDeep(ValueError):
    """A JSON value nested more than `nesting.MAX_DEPTH` levels deep."""

    def __init__(self) -> None:
        super().__init__(f"is nested more than {nesting.MAX_DEPTH} levels deep")


def _literal_too_deep(node: ValueNode) -> bool:
    pending: list[tuple[ValueNode, int]] = [(node, 0)]
    while pending:
        current, depth = pending.pop()
        children: list[ValueNode]
        if isinstance(current, ObjectValueNode):
            children = [field.value for field in current.fields]
        elif isinstance(current, ListValueNode):
            children = list(current.values)
        else:
            continue
        if depth + 1 > nesting.MAX_DEPTH:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if _literal_too_deep(node):
        raise TooDeep
    return value_from_ast_untyped(node, variables)


def _parse_value(value: Any) -> Any:
    # Variables arrive decoded; the resolvers check their depth (naming the field) before
    # converting them, and the HTTP body was scanned for depth before it was decoded.
    return value


JSON = NewType("JSON", object)

# In the schema's `scalar_map` (strawberry's way for a NewType scalar).
JSON_SCALAR = strawberry.scalar(
    name="JSON",
    description=f"Any JSON value, nested at most {nesting.MAX_DEPTH} levels deep.",
    specified_by_url="https://www.rfc-editor.org/rfc/rfc8259",
    serialize=lambda value: value,
    parse_value=_parse_value,
    parse_literal=_parse_literal,
)
