"""Dashboard credentials: scrypt password hashes, signed session cookies and CSRF tokens.

A password hash reads `scrypt$n$r$p$salt$hash` (salt and hash in unpadded URL-safe base64),
made by `herald dashboard hash-password`. A session is a cookie `payload.signature`, where the
payload holds the user, a per-session CSRF token and an expiry, and the signature is
HMAC-SHA256 under a key derived from `DASHBOARD_SECRET_KEY` and the password hash, so changing
either signs every session out. Every comparison of secrets is constant-time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

# 2^15 x 8 x 1 costs 32 MiB and about 0.1 s per check: slow for guessing, fine for a login.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_MAX_N = 2**20
_HASH_BYTES = 32
SESSION_SECONDS = 12 * 3600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * r * n * p,
        dklen=_HASH_BYTES,
    )


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A new `scrypt$n$r$p$salt$hash` for `password`, with a random 16-byte salt."""
    salt = secrets.token_bytes(16)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


@dataclass(frozen=True, slots=True)
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """Parse an encoded hash; `ValueError` saying what is wrong with it otherwise."""
        parts = encoded.strip().split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError(
                "expected scrypt$n$r$p$salt$hash from `herald dashboard hash-password`"
            )
        try:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
        except ValueError:
            raise ValueError("scrypt parameters or base64 parts are malformed") from None
        if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError(f"scrypt parameters out of range: n={n} r={r} p={p}")
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("salt or hash too short")
        return cls(n, r, p, salt, digest)

    def matches(self, password: str) -> bool:
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p)[: len(self.digest)]
        return hmac.compare_digest(candidate, self.digest)


class Credentials:
    """The one configured user; `check` runs scrypt in a thread so the loop keeps serving."""

    def __init__(self, username: str, password_hash: str) -> None:
        self.username = username
        self.password_hash = PasswordHash.parse(password_hash)
        # Bounds memory and CPU when many sign-ins arrive at once (each check takes 32 MiB).
        self._slots = asyncio.Semaphore(2)

    async def check(self, username: str, password: str) -> bool:
        # scrypt runs whatever the username, so a wrong user takes as long as a wrong password.
        async with self._slots:
            password_ok = await asyncio.to_thread(self.password_hash.matches, password)
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        return user_ok and password_ok


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf: str
    expires: int


class SessionSigner:
    """Makes and checks `payload.signature` session cookies (HMAC-SHA256)."""

    def __init__(self, secret: bytes, credentials: Credentials) -> None:
        # Bound to the password hash: changing the password signs every session out.
        self._key = hmac.digest(
            secret, b"herald-dashboard-session:" + credentials.password_hash.digest, "sha256"
        )
        self._user = credentials.username

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.digest(self._key, payload, "sha256"))

    def issue(self, user: str, *, now: float | None = None) -> tuple[str, Session]:
        session = Session(
            user=user,
            csrf=secrets.token_urlsafe(32),
            expires=int((now or time.time()) + SESSION_SECONDS),
        )
        payload = json.dumps({"u": session.user, "c": session.csrf, "e": session.expires})
        encoded = _b64(payload.encode())
        return f"{encoded}.{self._sign(encoded.encode())}", session

    def verify(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session in a valid, unexpired cookie for the configured user; None otherwise."""
        if not cookie or cookie.count(".") != 1:
            return None
        encoded, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(encoded.encode()).encode()):
            return None
        try:
            data = json.loads(_unb64(encoded))
            session = Session(user=str(data["u"]), csrf=str(data["c"]), expires=int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now or time.time()) or session.user != self._user:
            return None
        return session

    def sign_token(self, token: str) -> str:
        """`token.signature`: the pre-login CSRF cookie (the login form has no session yet)."""
        return f"{token}.{self._sign(b'login:' + token.encode())}"

    def verify_token(self, signed: str | None) -> str | None:
        if not signed or signed.count(".") != 1:
            return None
        token, signature = signed.split(".")
        expected = self._sign(b"login:" + token.encode())
        return token if hmac.compare_digest(signature.encode(), expected.encode()) else None


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
