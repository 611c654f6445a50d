"""podman for tests/deploy/test_image.py: a local Debian base image and Herald's image built on it.

No image registry is reachable on the test machine, so the Dockerfile's BASE_IMAGE is made here:
debootstrap of Debian bookworm (minbase, python3 + python3-venv, from the mirror apt uses),
imported into podman as `localhost/herald-test-base:<hash of its inputs>`. When that tag exists
it is reused, so debootstrap runs once per machine (and again only when its inputs change).
Herald's image is then built with podman's layer cache and pip's cache mount.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.deploy.support import ROOT

CONTAINERS_CONF = Path(__file__).parent / "podman" / "containers.conf"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv")
# Removed from the rootfs before import: apt's downloads and lists, docs, man pages, locales.
PRUNE = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)
IMAGE = "localhost/herald-test:latest"
# Where the build's pip finds the host's CA bundle (mounted read-only, never in a layer).
BUILD_CA = "/run/herald-build-ca.crt"


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def debian_mirror() -> str:
    """The Debian mirror apt uses (deb822 .sources or one-line sources.list), else the CDN."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        text = path.read_text(errors="replace") if path.is_file() else ""
        found = re.findall(r"^(?:URIs:|deb(?:\s+\[[^\]]*\])?)\s+(\S+)", text, re.MULTILINE)
        for uri in found:
            if re.search(r"/debian/?$", uri):
                return str(uri).rstrip("/")
    return "http://deb.debian.org/debian"


def base_tag() -> str:
    """The base image's tag: a hash of everything that makes it."""
    inputs = "\n".join([SUITE, "minbase", *PACKAGES, *PRUNE, debian_mirror()])
    return "localhost/herald-test-base:" + hashlib.sha256(inputs.encode()).hexdigest()[:16]


def ensure_base() -> str:
    tag = base_tag()
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="herald-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["nice", "-n", "10", "debootstrap", "--variant=minbase",
             "--include=" + ",".join(PACKAGES), SUITE, str(rootfs), debian_mirror()],
            capture_output=True, timeout=900, check=True,
        )  # fmt: skip
        for folder in PRUNE:
            for child in (rootfs / folder).glob("*"):
                shutil.rmtree(
                    child
                ) if child.is_dir() and not child.is_symlink() else child.unlink()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                ["podman", "import", "-", tag],
                stdin=tar.stdout, env=podman_env(), capture_output=True, timeout=300, check=False,
            )  # fmt: skip
        assert tar.returncode == 0, "tar of the rootfs failed"
        assert imported.returncode == 0, imported.stderr
    return tag


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (an intercepting proxy's CA may be in it)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):  # fmt: skip
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_image(base: str) -> str:
    """Build the repository's Dockerfile on `base` (podman's layer cache makes a rebuild cheap)."""
    args = ["--format", "docker", "--network", "host", "--build-arg", f"BASE_IMAGE={base}"]
    ca = host_ca_bundle()
    if ca is not None:
        args += ["--volume", f"{ca}:{BUILD_CA}:ro", "--build-arg", f"PIP_CERT={BUILD_CA}"]
    if os.environ.get("PIP_INDEX_URL"):
        args += ["--build-arg", f"PIP_INDEX_URL={os.environ['PIP_INDEX_URL']}"]
    before = podman("image", "inspect", "--format", "{{.Id}}", IMAGE, check=False).stdout.strip()
    result = subprocess.run(
        ["nice", "-n", "10", "podman", "build", *args, "-t", IMAGE, str(ROOT)],
        env=podman_env(), capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"podman build failed:\n{result.stdout[-4000:]}\n{result.stderr}"
    if before and before != podman("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip():
        podman("rmi", before, check=False)  # the last build's image, untagged now: not kept
    return IMAGE
