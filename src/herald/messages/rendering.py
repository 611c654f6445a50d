"""Compiling and rendering one template field in Jinja2's sandbox, within limits.

`ImmutableSandboxedEnvironment` refuses attribute access that could reach Python internals
(`{{ ''.__class__ }}`) and methods that change data; `StrictUndefined` makes a missing
variable an error instead of an empty string; only the email HTML part is autoescaped. A
field is compiled once per source text and kept in a bounded LRU cache (identical text
compiles to the identical template, whichever key or version it belongs to).

Limits, so that one template cannot hold the event loop or the memory: a field's source is
at most MAX_FIELD_CHARS, its rendered output at most MAX_OUTPUT_CHARS (rendering stops as
soon as it passes it), and `range()` hands out at most MAX_RANGE_ITEMS items per render.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

MAX_FIELD_CHARS = 64 * 1024
MAX_OUTPUT_CHARS = 512 * 1024
MAX_RANGE_ITEMS = 10_000
CACHE_SIZE = 1024


class RenderError(Exception):
    """A field could not be rendered; `variable` names a missing variable when that is why."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable


class _Undefined(StrictUndefined):
    """StrictUndefined that says which name was missing, for a message naming the variable."""

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is SecurityError:
            raise SecurityError(str(self._undefined_hint))
        name = self._undefined_name
        if name is None:
            raise RenderError(f"undefined value ({self._undefined_hint})")
        if self._undefined_obj is not missing and self._undefined_obj is not None:
            raise RenderError(f"undefined attribute or key {name!r}", variable=f"?.{name}")
        raise RenderError(f"undefined variable {name!r}", variable=str(name))


# Undefined binds its operators (`__str__`, `__add__`, `__iter__`...) to its own failing
# method at class creation: point every one of them at ours.
for _name, _value in vars(Undefined).items():
    if _value is Undefined._fail_with_undefined_error:
        setattr(_Undefined, _name, _Undefined._fail_with_undefined_error)
for _name, _value in vars(StrictUndefined).items():
    if _value is Undefined._fail_with_undefined_error:
        setattr(_Undefined, _name, _Undefined._fail_with_undefined_error)

_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("range_budget")


def _bounded_range(*args: int) -> range:
    """`range()` for templates: every call spends from one budget per render."""
    items = range(*args)
    budget = _budget.get()
    budget[0] -= len(items)
    if budget[0] < 0:
        raise RenderError(f"range() gave more than {MAX_RANGE_ITEMS} items in one render")
    return items


_WIDE_FORMAT = re.compile(r"%[#0\- +]*(\*|\d{6,})|\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


def _check_size(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
        raise RenderError(f"a width above {MAX_OUTPUT_CHARS} is not allowed")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise RenderError("a format width of 100000 or more (or '*') is not allowed")


def _sized(function: Any) -> Any:
    """A filter whose numeric arguments cannot ask for a huge result (`center(10**9)`)."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            _check_size(value)
        return function(*args, **kwargs)

    return guarded


def _formatted(function: Any) -> Any:
    @functools.wraps(function)
    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(value)
        return function(value, *args, **kwargs)

    return guarded


def _bounded_replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = len(text) + 1 if old == "" else text.count(old)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_OUTPUT_CHARS:
        raise RenderError(f"replace() would give more than {MAX_OUTPUT_CHARS} characters")
    return text.replace(old, new, -1 if count is None else count)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with the operations that could build a huge value bounded first."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for times, other in ((left, right), (right, left)):
                sized = isinstance(times, int) and hasattr(other, "__len__")
                if sized and times * len(other) > MAX_OUTPUT_CHARS:
                    raise RenderError(f"'*' would give more than {MAX_OUTPUT_CHARS} items")
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise RenderError("'**' with an exponent above 64 is not allowed")
        elif operator == "%":
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # The sandbox hands out str.format wrapped (functools.wraps keeps `__wrapped__`).
        method = getattr(__obj, "__wrapped__", __obj)
        owner, name = getattr(method, "__self__", None), getattr(method, "__name__", None)
        if isinstance(owner, str):
            if name in _PADDING_METHODS:
                for value in (*args, *kwargs.values()):
                    _check_size(value)
            elif name == "replace" and len(args) >= 2:
                _bounded_replace(owner, args[0], args[1])
            elif name in ("format", "format_map"):
                _check_format(owner)
        return super().call(__context, __obj, *args, **kwargs)


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(
        undefined=_Undefined, autoescape=html, keep_trailing_newline=True, auto_reload=False
    )
    env.globals["range"] = _bounded_range
    for name in ("center", "indent"):
        env.filters[name] = _sized(env.filters[name])
    env.filters["format"] = _formatted(env.filters["format"])
    env.filters["replace"] = _bounded_replace
    return env


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


def _private_names(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """Attribute or key names starting with `_`: never data, always a reach for internals."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and name.startswith("_"):
            yield node.lineno, name


def check_source(source: str, *, html: bool) -> str | None:
    """Why `source` cannot be saved (too long, a syntax error with its line, a private
    attribute the sandbox would refuse), or None."""
    if len(source) > MAX_FIELD_CHARS:
        return f"is longer than {MAX_FIELD_CHARS} characters"
    env = _HTML if html else _TEXT
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    for line, name in _private_names(tree):
        return f"line {line}: access to {name!r} is not allowed by the template sandbox"
    try:
        compiled(source, html=html)
    except TemplateSyntaxError as exc:  # errors found only by the compiler
        return f"line {exc.lineno}: {exc.message}"
    return None


@functools.lru_cache(maxsize=CACHE_SIZE)
def compiled(source: str, *, html: bool) -> Template:
    """The compiled template of `source` (cached, bounded LRU)."""
    return (_HTML if html else _TEXT).from_string(source)


def render_field(source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """Render one field; RenderError (never anything else) when it cannot be rendered."""
    token = _budget.set([MAX_RANGE_ITEMS])
    try:
        parts: list[str] = []
        size = 0
        for chunk in compiled(source, html=html).generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderError(f"renders to more than {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
        return "".join(parts)
    except RenderError:
        raise
    except SecurityError as exc:
        raise RenderError(f"refused by the template sandbox: {exc}") from None
    except UndefinedError as exc:
        raise RenderError(f"undefined value: {exc}") from None
    except TemplateSyntaxError as exc:
        raise RenderError(f"line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise RenderError("recurses too deeply") from None
    except Exception as exc:  # a template's own runtime error ({{ 1 / 0 }}, {{ name + 1 }})
        raise RenderError(f"cannot be rendered: {_first_line(exc)}") from None
    finally:
        _budget.reset(token)


def _first_line(exc: Exception) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
