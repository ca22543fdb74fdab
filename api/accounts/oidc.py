"""Customers' access tokens from the coffee platform's identity provider: RS256/ES256 JWTs checked
against the issuer's published keys (JWKS).

Keys are cached per issuer. A token whose `kid` is not among them makes the keys be fetched again
(the provider rotated), at most once per `oidc_jwks_refresh_seconds`, so a stream of made-up `kid`s
cannot turn every request into a fetch. PyJWT checks signature, `iss`, `aud`, `exp`, `nbf` and
`iat` with the configured leeway; the algorithm comes from the configuration, never from the token.

A customer is the pair (issuer, sub), made one UUID (`customer_id`): each provider names its own people, so
equal subjects at two issuers are two customers, and no issuer can pick a subject that names another's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import jwt
import structlog

from beanpay.config import OidcIssuer

log = structlog.get_logger("oidc")


class TokenRefused(Exception):
    """The token is not one of the issuer's, or no longer valid; the message says why."""


def customer_id(issuer: str, sub: uuid.UUID) -> uuid.UUID:
    """The customer `sub` of `issuer` is: a name-based UUID (v5) of both, under a namespace per issuer."""
    return uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, issuer), str(sub))


class _Keys:
    def __init__(self) -> None:
        self.by_kid: dict[str, Any] = {}
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()


class Verifier:
    def __init__(self, issuers: list[OidcIssuer], *, leeway: int, refresh_seconds: float) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._keys = {i.issuer: _Keys() for i in issuers}
        self._leeway = leeway
        self._refresh = refresh_seconds
        self._session: aiohttp.ClientSession | None = None

    def knows(self, issuer: object) -> bool:
        return isinstance(issuer, str) and issuer in self._issuers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def customer(self, token: str, issuer: str) -> uuid.UUID:
        """The customer id of a valid token from `issuer`: its `sub` (a UUID) bound to the issuer."""
        config = self._issuers[issuer]
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenRefused(str(exc)) from None
        if not isinstance(kid, str):
            raise TokenRefused("the token names no key (kid)")
        key = await self._key(config, kid)
        try:
            body = jwt.decode(token, key, algorithms=list(config.algorithms), audience=config.audience,
                              issuer=config.issuer, leeway=self._leeway,
                              options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise TokenRefused(str(exc)) from None
        try:
            sub = uuid.UUID(str(body["sub"]))
        except ValueError:
            raise TokenRefused("sub is not a UUID") from None
        return customer_id(config.issuer, sub)

    async def _key(self, config: OidcIssuer, kid: str) -> Any:
        keys = self._keys[config.issuer]
        if kid in keys.by_kid:
            return keys.by_kid[kid]
        async with keys.lock:
            if kid not in keys.by_kid and time.monotonic() - keys.fetched_at >= self._refresh:
                await self._fetch(config, keys)
        if kid not in keys.by_kid:
            raise TokenRefused(f"unknown signing key {kid!r}")
        return keys.by_kid[kid]

    async def _fetch(self, config: OidcIssuer, keys: _Keys) -> None:
        keys.fetched_at = time.monotonic()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            async with self._session.get(config.jwks_url) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            jwks = jwt.PyJWKSet.from_dict(document)
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            log.warning("identity provider keys unavailable", issuer=config.issuer, error=str(exc))
            return  # the keys we had stay in use
        keys.by_kid = {k.key_id: k.key for k in jwks.keys if k.key_id and k.public_key_use in (None, "sig")}
        log.info("identity provider keys loaded", issuer=config.issuer, kids=sorted(keys.by_kid))
