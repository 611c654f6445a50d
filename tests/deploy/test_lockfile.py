"""requirements.lock (the image's dependencies) and requirements-build.lock stay in step with
pyproject.toml: every dependency is pinned, hashed, and satisfies what pyproject asks for.

Regenerate both after changing dependencies (see README.md, "The image"):
  uv pip compile pyproject.toml -o requirements.lock --generate-hashes --python-version 3.11 \
      --universal
  echo 'hatchling>=1.25' | uv pip compile - -o requirements-build.lock --generate-hashes \
      --python-version 3.11 --universal
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.support import ROOT, pyproject

# The image: CPython 3.11 on Linux (either architecture).
IMAGE_ENV = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
}


def parse_lock(path: Path) -> dict[str, tuple[Version, list[str], str]]:
    """name -> (pinned version, hashes, marker) for every requirement in a pip lock file."""
    text = path.read_text()
    entries: dict[str, tuple[Version, list[str], str]] = {}
    for block in re.split(r"\n(?=\S)", text):
        first = block.splitlines()[0]
        if first.startswith("#") or not first.strip():
            continue
        requirement = Requirement(first.rstrip(" \\"))
        pins = [s for s in requirement.specifier if s.operator == "=="]
        assert len(pins) == 1, f"{path.name}: {first} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        marker = str(requirement.marker) if requirement.marker else ""
        entries[canonicalize_name(requirement.name)] = (Version(pins[0].version), hashes, marker)
    return entries


def applies(marker: str, extra: str = "") -> bool:
    if not marker:
        return True
    parsed = Requirement(f"x; {marker}").marker
    assert parsed is not None
    return parsed.evaluate({**IMAGE_ENV, "extra": extra})


LOCK = ROOT / "requirements.lock"
BUILD_LOCK = ROOT / "requirements-build.lock"


@pytest.mark.parametrize("path", [LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_every_requirement_is_pinned_and_hashed(path: Path) -> None:
    entries = parse_lock(path)
    assert entries
    for name, (_, hashes, _) in entries.items():
        assert hashes, f"{path.name}: {name} has no --hash (pip --require-hashes would refuse)"
    header = path.read_text().splitlines()[:3]
    assert any("--generate-hashes" in line for line in header), "say how it was generated"
    assert any("--python-version 3.11" in line for line in header)


def test_lock_satisfies_every_runtime_dependency() -> None:
    entries = parse_lock(LOCK)
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} is in pyproject.toml but not in requirements.lock"
        version, _, _ = entries[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, pyproject.toml wants {requirement}:"
            " regenerate the lock (README.md, 'The image')"
        )


def test_lock_has_the_extras_pyproject_asks_for() -> None:
    """e.g. uvicorn[standard] must bring uvloop and httptools, which `herald serve` uses."""
    entries = parse_lock(LOCK)
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        for extra in requirement.extras:
            for dependency in metadata.requires(requirement.name) or []:
                wanted = Requirement(dependency)
                marker = str(wanted.marker) if wanted.marker else ""
                if f'extra == "{extra}"' not in marker or not applies(marker, extra):
                    continue
                assert canonicalize_name(wanted.name) in entries, (
                    f"{requirement.name}[{extra}] needs {wanted.name}: regenerate the lock"
                )


def test_lock_has_no_development_tools() -> None:
    tools = {"pytest", "ruff", "mypy", "hypothesis", "schemathesis", "uv"}
    assert not tools & set(parse_lock(LOCK)), "the image's lock is built from runtime deps only"


def test_build_lock_satisfies_the_build_backend() -> None:
    entries = parse_lock(BUILD_LOCK)
    for text in pyproject()["build-system"]["requires"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} (build-system.requires) is not in requirements-build.lock"
        assert requirement.specifier.contains(entries[name][0], prereleases=True)


def test_locked_markers_keep_the_image_dependencies() -> None:
    """A marker that excluded Linux/CPython 3.11 would leave the image without a package."""
    entries = parse_lock(LOCK)
    for text in pyproject()["project"]["dependencies"]:
        name = canonicalize_name(Requirement(text).name)
        assert applies(entries[name][2]), f"{name} is locked with a marker the image fails"
