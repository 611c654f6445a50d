"""Password hashes, session cookies and `herald dashboard hash-password`, without a server."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from herald.cli import cli
from herald.dashboard.security import Credentials, PasswordHash, SessionSigner, hash_password

FAST = {"n": 2**10, "r": 8, "p": 1}  # the format is the same; tests need not pay for 2^15


def test_a_hash_is_scrypt_with_its_parameters_and_a_random_salt() -> None:
    first, second = hash_password("s3cret-password"), hash_password("s3cret-password")
    assert first != second  # salted
    name, n, r, p, salt, digest = first.split("$")
    assert (name, n, r, p) == ("scrypt", "32768", "8", "1")
    assert len(salt) >= 16
    assert len(digest) >= 32
    parsed = PasswordHash.parse(first)
    assert parsed.matches("s3cret-password")
    assert not parsed.matches("s3cret-passworD")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "bcrypt$2b$12$abc",
        "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # n not a power of two
        "scrypt$16384$8$1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # salt too short
        "scrypt$x$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_malformed_hashes_are_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match=r"scrypt|salt"):
        PasswordHash.parse(encoded)


async def test_credentials_need_both_the_user_and_the_password() -> None:
    credentials = Credentials("admin", hash_password("right-password", **FAST))
    assert await credentials.check("admin", "right-password")
    assert not await credentials.check("admin", "wrong-password")
    assert not await credentials.check("root", "right-password")
    assert not await credentials.check("", "")


def test_sessions_are_signed_expire_and_end_with_the_password_or_the_user() -> None:
    encoded = hash_password("right-password", **FAST)
    credentials = Credentials("admin", encoded)
    signer = SessionSigner(b"key", credentials)
    cookie, session = signer.issue("admin")
    assert signer.verify(cookie) == session
    assert signer.verify(cookie, now=session.expires + 1) is None
    assert signer.verify(cookie + "x") is None
    assert signer.verify("garbage") is None
    assert SessionSigner(b"other key", credentials).verify(cookie) is None
    new_password = Credentials("admin", hash_password("new-password", **FAST))
    assert SessionSigner(b"key", new_password).verify(cookie) is None
    renamed = Credentials("root", encoded)
    assert SessionSigner(b"key", renamed).verify(cookie) is None


def test_login_tokens_are_signed() -> None:
    signer = SessionSigner(b"key", Credentials("admin", hash_password("x" * 12, **FAST)))
    signed = signer.sign_token("token")
    assert signer.verify_token(signed) == "token"
    assert signer.verify_token("token.forged") is None
    assert signer.verify_token(None) is None


def test_hash_password_command_prints_a_hash_that_verifies() -> None:
    result = CliRunner().invoke(
        cli, ["dashboard", "hash-password", "--password-stdin"], input="a long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    encoded = result.output.strip()
    assert encoded.startswith("scrypt$")
    assert PasswordHash.parse(encoded).matches("a long passphrase")


def test_hash_password_command_prompts_twice_without_echo() -> None:
    result = CliRunner().invoke(
        cli, ["dashboard", "hash-password"], input="a long passphrase\na long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    assert "a long passphrase" not in result.output
    assert PasswordHash.parse(result.output.strip().splitlines()[-1]).matches("a long passphrase")


def test_hash_password_command_refuses_a_short_password() -> None:
    result = CliRunner().invoke(
        cli, ["dashboard", "hash-password", "--password-stdin"], input="short\n"
    )
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
