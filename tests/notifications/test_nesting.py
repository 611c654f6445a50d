"""The nesting limit, checked on raw bytes and on decoded values without recursion."""

from __future__ import annotations

import json

from herald.notifications.nesting import MAX_DEPTH, depth_exceeds, field_name, too_deep_in_body


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_a_field_may_nest_up_to_the_limit() -> None:
    at_limit = b'{"metadata": ' + _deep(MAX_DEPTH).encode() + b"}"
    over = b'{"metadata": ' + _deep(MAX_DEPTH + 1).encode() + b"}"
    assert too_deep_in_body(at_limit, envelope=1) is None
    path = too_deep_in_body(over, envelope=1)
    assert path is not None
    assert field_name(path, envelope=1) == "metadata"


def test_the_path_names_the_batch_item_and_its_field() -> None:
    item = {"channel": "sms", "to": "+447911123456", "body": "x"}
    body = json.dumps({"notifications": [item, item]})[:-3] + ', "metadata": '
    body += _deep(MAX_DEPTH + 1) + "}]}"
    path = too_deep_in_body(body.encode(), envelope=3)
    assert path is not None
    assert field_name(path, envelope=3) == "notifications[1].metadata"


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"metadata": {"text": "[" * 500 + '\\"{' * 100}}).encode()
    assert too_deep_in_body(body, envelope=1) is None


def test_a_bare_deep_array_has_no_field() -> None:
    path = too_deep_in_body(_deep(100_000).encode(), envelope=1)
    assert path is not None
    assert field_name(path, envelope=1) == "(body)"


def test_decoded_values_are_measured_without_recursion() -> None:
    value: object = 1
    for _ in range(50_000):  # far past Python's recursion limit
        value = [value]
    assert depth_exceeds(value)
    assert not depth_exceeds(json.loads(_deep(MAX_DEPTH)))
    assert depth_exceeds(json.loads(_deep(MAX_DEPTH + 1)))
    assert not depth_exceeds({"a": [{"b": "c"}]}, limit=3)
    assert depth_exceeds({"a": [{"b": []}]}, limit=3)


def test_an_unterminated_string_ends_the_scan() -> None:
    # Not JSON: the decoder refuses it. The scan must not re-read it from every quote (that
    # was quadratic: 32 KiB cost seconds of CPU); bench/benchmarks/hostile_json.py measures.
    brackets = '"a": ' + "[[]]," * 40
    body = '{"metadata": {' + brackets + '"s": "' + '\\"' * 100_000
    assert too_deep_in_body(body.encode(), envelope=1) is None
    deep_after_escapes = '{"metadata": {"s": "\\"\\\\", "x": ' + "[" * 40 + "]" * 40 + "}}"
    path = too_deep_in_body(deep_after_escapes.encode(), envelope=1)
    assert path is not None
    assert field_name(path, envelope=1) == "metadata"
