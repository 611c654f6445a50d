"""The contract: buf lint, no breaking change against the committed one, stubs up to date,
and the vocabulary and the proto enums mapping one to one."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from herald.api.grpc import convert
from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.vocabulary import Channel, Priority, Status

ROOT = Path(__file__).resolve().parents[3]
BUF = Path(sys.executable).parent / "buf"
sys.path.insert(0, str(ROOT / "proto"))
from generate import TARGET, generate  # noqa: E402


def _buf(*args: str) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is not installed (buf-bin is in the dev extra)"
    return subprocess.run(
        [str(BUF), *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_buf_lint_passes() -> None:
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def _committed(ref: str, folder: Path) -> bool:
    """The contract at `ref` (proto/ and buf.yaml) unpacked into `folder`; False if none."""
    archive = subprocess.run(
        ["git", "archive", ref, "proto", "buf.yaml"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        return False
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return (folder / "proto" / "herald" / "v1").is_dir()


@pytest.mark.parametrize("ref", ["HEAD", "main"])
def test_no_breaking_change_against_the_committed_contract(ref: str, tmp_path: Path) -> None:
    """Against the last commit (edits in progress) and main (a branch's changes)."""
    if not _committed(ref, tmp_path):
        pytest.skip(f"no contract at {ref} yet")
    result = _buf("breaking", "--against", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_stubs_are_what_the_contract_generates(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in TARGET.iterdir() if p.is_file()}
    assert fresh == committed, "run `python proto/generate.py` and commit the result"


@pytest.mark.parametrize(
    ("enum", "to_proto", "from_proto", "proto"),
    [
        (Channel, convert.CHANNEL_TO_PROTO, convert.CHANNEL_FROM_PROTO, pb.Channel),
        (Status, convert.STATUS_TO_PROTO, convert.STATUS_FROM_PROTO, pb.Status),
        (Priority, convert.PRIORITY_TO_PROTO, convert.PRIORITY_FROM_PROTO, pb.Priority),
    ],
    ids=["channel", "status", "priority"],
)
def test_every_vocabulary_member_maps_to_the_contract_and_back(
    enum: type, to_proto: dict, from_proto: dict, proto: object
) -> None:
    for member in enum:  # type: ignore[attr-defined]
        assert from_proto[to_proto[member]] == member.value
    # Every proto value but the unspecified zero is a vocabulary member.
    numbers = {v for v in proto.values() if v != 0}  # type: ignore[attr-defined]
    assert numbers == set(from_proto)
