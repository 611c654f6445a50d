"""The Dockerfile and .dockerignore, read as text and checked against the app.

tests/deploy/test_image.py builds and runs the image with podman; these tests parse the
Dockerfile and check its entry point, user, health check, layer order and final stage against
Herald's commands, routes and settings; the health check command itself is run against a real
`herald serve`.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from packaging.specifiers import SpecifierSet

from tests.deploy.support import (
    ROOT,
    Instruction,
    cli_commands,
    console_scripts,
    default,
    dockerfile,
    image_user,
    pyproject,
    request_path,
    route_paths,
    settings_from_env,
    unknown_settings,
)
from tests.support.process import HeraldProcess, free_port


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def only(keyword: str, instructions: list[Instruction] | None = None) -> Instruction:
    found = [i for i in (instructions or final_stage()) if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


def image_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE pairs, one or several per instruction)."""
    env: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            for key, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", instruction.args):
                env[key] = value.strip('"')
    return env


def healthcheck_command() -> list[str]:
    args = only("HEALTHCHECK").args
    options, _, command = args.partition("CMD ")
    assert options.strip().startswith("--") or not options.strip(), args
    return Instruction(0, "CMD", command.strip()).exec_form()


def test_multi_stage_from_an_overridable_slim_python_311() -> None:
    instructions = dockerfile()
    assert max(i.stage for i in instructions) >= 1, "multi-stage: build apart from runtime"
    args = [i.args for i in instructions if i.keyword == "ARG" and "BASE_IMAGE" in i.args]
    images = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    # --build-arg BASE_IMAGE=... builds on another base (tests/deploy/test_image.py does).
    assert set(images) == {"${BASE_IMAGE}"}, images
    resolved = [a.split("=", 1)[1] for a in args]
    assert resolved, "BASE_IMAGE needs a default: the official image"
    for image in resolved:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image)
    assert "3.11" in SpecifierSet(pyproject()["project"]["requires-python"])


def test_entrypoint_is_herald_serve() -> None:
    command = [*only("ENTRYPOINT").exec_form(), *only("CMD").exec_form()]
    assert command == ["herald", "serve"]
    assert console_scripts()["herald"] == "herald.cli:main"
    assert command[1] in cli_commands()


def test_runs_as_a_non_root_user_created_in_the_image() -> None:
    user = image_user()
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "numeric, so Kubernetes' runAsNonRoot can check it"
    assert int(uid) != 0
    assert not gid or int(gid) != 0
    created = " ".join(i.args for i in final_stage() if i.keyword == "RUN")
    assert f"--uid {uid}" in created
    if gid:
        assert f"--gid {gid}" in created


def test_listens_where_herald_does() -> None:
    env = image_env()
    assert not unknown_settings(set(env)), f"not Herald settings: {unknown_settings(set(env))}"
    settings = settings_from_env({k: v for k, v in env.items() if k not in {"PATH"}})
    assert settings.host == "0.0.0.0", "a container must listen on all interfaces"
    assert settings.grpc_host == "0.0.0.0", "gRPC too"
    assert only("EXPOSE").args.split() == [str(settings.port), str(settings.grpc_port)]
    assert settings.port == default("PORT")
    assert settings.grpc_port == default("GRPC_PORT")
    assert only("STOPSIGNAL").args == "SIGTERM"


def test_healthcheck_is_liveness_on_a_real_route() -> None:
    command = healthcheck_command()
    assert command[0] == "python", "the slim image has no curl"
    path = request_path(" ".join(command))
    assert path == "/health/live", "liveness only: a DB outage must not restart containers"
    api_only = settings_from_env({"ENABLE_WORKERS": "false"})
    worker_only = settings_from_env({"ENABLE_API": "false"})
    assert path in route_paths(api_only)
    assert path in route_paths(worker_only)


def test_lock_file_is_installed_before_the_source_is_copied() -> None:
    builder = [i for i in dockerfile() if i.stage == 0]
    keywords = [(i.keyword, i.args) for i in builder]

    def index(predicate: Callable[[str, str], bool]) -> int:
        found = [n for n, (k, a) in enumerate(keywords) if predicate(k, a)]
        assert found, "instruction not found"
        return found[0]

    copy_lock = index(lambda k, a: k == "COPY" and a.split()[0] == "requirements.lock")
    install_lock = index(lambda k, a: k == "RUN" and "-r requirements.lock" in a)
    copy_source = index(lambda k, a: k == "COPY" and a.split()[0] == "src")
    copy_project = index(lambda k, a: k == "COPY" and "pyproject.toml" in a.split())
    install_project = index(
        lambda k, a: k == "RUN" and "--no-deps" in a and "install" in a and " -r " not in a
    )
    assert copy_lock < install_lock < copy_project < copy_source < install_project
    assert "--require-hashes" in keywords[install_lock][1]
    assert "--only-binary=:all:" in keywords[install_lock][1], "no compilers needed"


def test_final_stage_has_no_build_tools_or_caches() -> None:
    for instruction in final_stage():
        if instruction.keyword == "RUN":
            assert "pip" not in instruction.args, "install in the builder, copy the venv"
            assert "apt-get install" not in instruction.args
        if instruction.keyword == "COPY":
            assert instruction.args.startswith("--from="), f"copies from the context: {instruction}"
            assert instruction.args.split()[1:] == ["/opt/venv", "/opt/venv"]
    # pip's cache is a cache mount in every builder RUN that downloads: reused, never a layer.
    for instruction in dockerfile():
        if instruction.stage == 0 and instruction.keyword == "RUN" and " -r " in instruction.args:
            assert "--mount=type=cache,target=/root/.cache/pip" in instruction.args, instruction


def test_entrypoint_and_healthcheck_use_exec_form() -> None:
    for keyword in ("ENTRYPOINT", "CMD"):
        only(keyword).exec_form()  # shell form would put /bin/sh between SIGTERM and Herald
    healthcheck_command()


# -- .dockerignore ------------------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def excluded(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for raw in dockerignore_patterns():
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        patterns = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            result = not negate
    return result


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and not instruction.args.startswith("--from="):
            for source in instruction.args.split()[:-1]:
                assert not excluded(source), f"{source} is copied but .dockerignore excludes it"
    packaged = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert packaged
    assert not [path for path in packaged if excluded(path)], "a packaged file is excluded"


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "deploy/k8s/base/secret.example.yaml",
        "src/herald/__pycache__/app.cpython-311.pyc",
        "src/.env",
        "bench/out/result.json",
    ],
)
def test_dockerignore_keeps_secrets_and_clutter_out(path: str) -> None:
    assert excluded(path)


# -- the HEALTHCHECK command, run for real -------------------------------------------------------


@pytest.mark.process
def test_healthcheck_command_passes_against_herald_and_fails_without_it(
    herald: Callable[..., HeraldProcess],
) -> None:
    command = [sys.executable if part == "python" else part for part in healthcheck_command()]
    process = herald()
    env = {"PORT": str(process.port), "PATH": ""}
    assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode == 0
    closed = {"PORT": str(free_port()), "PATH": ""}
    assert subprocess.run(command, env=closed, capture_output=True, timeout=30).returncode != 0
