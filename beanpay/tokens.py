"""JWT (HS256) bearer tokens: what `beanpay token` prints and what the API checks."""

from __future__ import annotations

import time
import uuid
from typing import Literal

import jwt
import msgspec

Role = Literal["customer", "staff", "merchant", "operator"]
ISSUER = "beanpay"


class Claims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    role: Role
    shops: list[uuid.UUID] = []

    def can_manage(self, shop_id: uuid.UUID) -> bool:
        """Operators manage every shop; merchants and staff only the shops in their token."""
        return self.role == "operator" or (self.role in ("merchant", "staff") and shop_id in self.shops)


class InvalidToken(Exception):
    pass


def issue(claims: Claims, secret: str, *, ttl: int) -> str:
    now = int(time.time())
    body = {**msgspec.to_builtins(claims), "iss": ISSUER, "iat": now, "exp": now + ttl}
    return jwt.encode(body, secret, algorithm="HS256")


def verify(token: str, secret: str) -> Claims:
    try:
        body = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                          options={"require": ["exp", "iat", "sub"]})
        return msgspec.convert(body, Claims)
    except (jwt.PyJWTError, msgspec.ValidationError) as exc:
        raise InvalidToken(str(exc)) from exc
