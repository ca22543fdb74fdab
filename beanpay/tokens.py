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
    # whoever holds the signing secret stands for a fully signed-in person, second factor included; False
    # makes a token of a password-only session (to test what needs the second factor). The API believes
    # it in the dev and test environments only: elsewhere a development token never carries a second factor
    second_factor: bool = True

    def can_manage(self, shop_id: uuid.UUID) -> bool:
        """Operators manage every shop; merchants and staff only the shops in their token."""
        return self.role == "operator" or (self.role in ("merchant", "staff") and shop_id in self.shops)


class InvalidToken(Exception):
    pass


def issue(claims: Claims, secret: str, *, ttl: int) -> str:
    now = int(time.time())
    body = {**msgspec.to_builtins(claims), "iss": ISSUER, "iat": now, "exp": now + ttl}
    return jwt.encode(body, secret, algorithm="HS256")


_VERIFIED: dict[tuple[str, str], tuple[Claims, int]] = {}
_VERIFIED_MAX = 10_000


def verify(token: str, secret: str) -> Claims:
    """The token's claims if its signature and times hold. A token verified before is answered from
    memory until its `exp` (the signature of the same bytes under the same secret cannot change);
    clients send the same token on every request, and HMAC plus JSON decoding was ~6% of a write."""
    known = _VERIFIED.get((token, secret))
    if known is not None and known[1] > time.time():
        return known[0]
    try:
        body = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                          options={"require": ["exp", "iat", "sub"]})
        claims = msgspec.convert(body, Claims)
    except (jwt.PyJWTError, msgspec.ValidationError) as exc:
        raise InvalidToken(str(exc)) from exc
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(token, secret)] = (claims, int(body["exp"]))
    return claims
