"""The job registry: adding a job type is one decorated async function and its queue name.

```python
from herald.queue import JobContext, job

@job(queue="email")
async def deliver_email(ctx: JobContext, notification_id: str, attempt: int) -> None: ...
```

Jobs live in modules named `jobs` anywhere under the `herald` package; `load_jobs()` imports
them all (plus the modules named in `JOB_MODULES`), so no other file needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    pass

P = ParamSpec("P")
R = TypeVar("R")

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A registered job: its name (the arq function name), queue and optional timeout."""

    name: str
    queue: str
    function: JobFunction
    timeout_seconds: float | None = None
    # Names for the leading positional arguments, bound to every log line of the job.
    log_args: tuple[str, ...] = ()


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def register(self, definition: JobDefinition) -> None:
        existing = self._jobs.get(definition.name)
        if existing is not None and existing.function is not definition.function:
            raise ValueError(f"job {definition.name!r} is registered twice")
        self._jobs[definition.name] = definition

    def get(self, name: str) -> JobDefinition:
        try:
            return self._jobs[name]
        except KeyError:
            raise KeyError(f"no job named {name!r} is registered") from None

    def for_queue(self, queue: str) -> list[JobDefinition]:
        return [d for d in self._jobs.values() if d.queue == queue]

    @property
    def queues(self) -> list[str]:
        return sorted({d.queue for d in self._jobs.values()})


registry = JobRegistry()


def job(
    *,
    queue: str,
    name: str | None = None,
    timeout_seconds: float | None = None,
    log_args: tuple[str, ...] = (),
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """Register an async function `(ctx: JobContext, *args) -> Any` as a job on `queue`.

    `log_args` names the leading arguments to bind to the job's log lines (ids only:
    never addresses or message content).
    """

    def decorate(function: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        registry.register(
            JobDefinition(
                name=name or f"{function.__module__}.{function.__qualname__}",
                queue=queue,
                function=function,
                timeout_seconds=timeout_seconds,
                log_args=log_args,
            )
        )
        return function

    return decorate


def job_name(function: Callable[..., Any]) -> str:
    """The registered name of a job function (the default `@job` naming)."""
    return f"{function.__module__}.{function.__qualname__}"


def load_jobs(extra_modules: Iterable[str] = ()) -> JobRegistry:
    """Import every `herald.**.jobs` module and the extra modules, so their jobs register."""
    import herald

    for module in pkgutil.walk_packages(herald.__path__, prefix="herald."):
        if module.name.rsplit(".", 1)[-1] == "jobs":
            importlib.import_module(module.name)
    for name in extra_modules:
        importlib.import_module(name)
    return registry


__all__ = ["JobDefinition", "JobRegistry", "job", "load_jobs", "registry"]
