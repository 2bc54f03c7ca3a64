"""Password hashing (scrypt, per-user salt) and JWT access tokens (HS256).

No extra dependencies: :func:`hashlib.scrypt` for passwords, PyJWT for tokens.
The signing secret comes from ``settings.api.jwt_secret`` (``${XL_JWT_SECRET}`` in
the config file); :func:`check_secret` refuses an unexpanded reference or a short
secret so a deployment never runs with a guessable key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MIN_SECRET_BYTES = 32


class SecretError(ValueError):
    """The JWT secret is missing or too weak."""


def check_secret(secret: str) -> str:
    if not secret or secret.startswith("${"):
        raise SecretError(
            "api.jwt_secret is not set: export XL_JWT_SECRET (at least 32 bytes, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise SecretError(f"api.jwt_secret is too short ({len(secret.encode())} bytes; need {MIN_SECRET_BYTES})")
    return secret


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (salt and hash base64)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, hash_b64 = encoded.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(digest, expected)


# a hash to verify against when the user does not exist, so timing does not reveal user names
DUMMY_HASH = hash_password("not-a-real-password", salt=b"\0" * 16)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    role: str
    centre_id: str
    expires_at: datetime


class TokenError(ValueError):
    """The token is missing, malformed, expired or signed with another key."""


def create_token(
    secret: str, username: str, role: str, centre_id: str, *, now: datetime, ttl_s: int, typ: str = "access"
) -> str:
    claims = {
        "sub": username,
        "role": role,
        "centre": centre_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "typ": typ,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str, *, now: datetime, typ: str = "access") -> TokenClaims:
    try:
        # expiry is checked against the injected clock below, not the wall clock
        data = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"verify_exp": False, "require": ["sub", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    if data.get("typ") != typ:
        raise TokenError(f"invalid token: not a{'n' if typ[0] in 'aeiou' else ''} {typ} token")
    exp = int(data["exp"])
    if now.timestamp() >= exp:
        raise TokenError("token expired")
    try:
        return TokenClaims(
            str(data["sub"]), str(data["role"]), str(data["centre"]), datetime.fromtimestamp(exp, tz=now.tzinfo)
        )
    except KeyError as exc:
        raise TokenError(f"invalid token: claim {exc.args[0]!r} missing") from exc


class LoginThrottle:
    """Refuses logins for a key (the login route uses user name + client address) after ``max_failures``
    failed attempts within ``window_s`` (answered 429 with ``Retry-After``), so passwords cannot be
    guessed at line rate, and a guesser cannot lock the account out for everyone. In memory, per
    process; a success clears the key's record."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, max_names: int = 10_000) -> None:
        self.max_failures, self.window_s, self.max_names = max_failures, window_s, max_names
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, now: float) -> float:
        """Seconds until ``username`` may try again (0: now)."""
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if now - t < self.window_s]
            if len(recent) < self.max_failures:
                return 0.0
            return self.window_s - (now - recent[-self.max_failures])

    def failed(self, username: str, now: float) -> None:
        with self._lock:
            if username not in self._failures and len(self._failures) >= self.max_names:
                # bounded memory: forget the names whose failures have all expired, else the oldest
                stale = [n for n, ts in self._failures.items() if not ts or now - ts[-1] >= self.window_s]
                for n in stale or [next(iter(self._failures))]:
                    del self._failures[n]
            ts = [t for t in self._failures.get(username, []) if now - t < self.window_s]
            ts.append(now)
            self._failures[username] = ts[-self.max_failures :]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)
