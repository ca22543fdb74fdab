"""Secrets a person or integration holds: passwords (argon2id), and random tokens (session ids,
invitation tokens, API keys) of which the server keeps only a SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from beanpay import capability

# argon2-cffi's defaults follow RFC 9106's second recommendation (argon2id, 64 MiB, 3 passes)
_hasher = PasswordHasher()
# verified against when the email is unknown, so a login takes as long either way
_DUMMY = _hasher.hash(secrets.token_hex(16))

API_KEY_PREFIX = "bp_"
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (an argon2 hash); constant work when there is none."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why a new password is refused, or None: length is what matters (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > 256:
        return "at most 256 characters"
    if email is not None and password.lower() == email.lower():
        return "must not be the email address"
    return None


def new_token() -> str:
    """32 random bytes, URL-safe (session ids and invitation tokens)."""
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    """A recognisable prefix and 32 random bytes (base64url): `bp_` then 43 characters."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(session_id: str, secret: str) -> str:
    """The CSRF token of a session: derived, so nothing more is stored, and useless without the cookie."""
    return hmac.new(secret.encode(), b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def checkout_token(order_id: uuid.UUID, secret: str) -> str:
    """An order's capability: its id and a MAC of it (nothing stored, nothing to look up). Whoever placed
    the order holds it, guests included; it opens that order's checkout page and status, nothing else."""
    return capability.token("checkout", order_id, secret)


def checkout_order(token: str, secret: str) -> uuid.UUID | None:
    """The order a checkout token opens, or None if it was not made here."""
    return capability.subject("checkout", token, secret)
