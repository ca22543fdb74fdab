"""Customers' access tokens from the platform's identity provider, checked against a local JWKS server
that rotates its keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import msgspec
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from beanpay.config import OidcIssuer, Settings

ISSUER = "https://id.coffee.example"
AUDIENCE = "beanpay"


class Provider:
    """An identity provider's key endpoint; `rotate` replaces every published key."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0

    def add(self, kind: str) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RS256" \
            else ec.generate_private_key(ec.SECP256R1())
        return kid

    def rotate(self, kind: str = "RS256") -> str:
        self.keys.clear()
        return self.add(kind)

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        found = []
        for kid, key in self.keys.items():
            rsa_key = isinstance(key, rsa.RSAPrivateKey)
            algorithm = jwt.algorithms.RSAAlgorithm if rsa_key else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            found.append({**jwk, "kid": kid, "use": "sig"})
        return web.json_response({"keys": found})

    def token(self, kid: str, *, sub: str | None = None, aud: str = AUDIENCE, iss: str = ISSUER,
              expires_in: int = 300, key: Any = None) -> str:
        key = key or self.keys[kid]
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        now = int(time.time())
        body = {"sub": sub or str(uuid.uuid4()), "aud": aud, "iss": iss, "iat": now - 5, "exp": now + expires_in}
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
async def provider(aiohttp_server) -> tuple[Provider, str]:  # type: ignore[no-untyped-def]
    found = Provider()
    app = web.Application()
    app.router.add_get("/jwks", found.jwks)
    server = await aiohttp_server(app)
    return found, str(server.make_url("/jwks"))


@pytest.fixture
async def api(settings: Settings, provider: tuple[Provider, str], aiohttp_client):  # type: ignore[no-untyped-def]
    from beanpay.api.app import init_app

    conf = msgspec.structs.replace(settings, oidc_issuers=[OidcIssuer(ISSUER, AUDIENCE, provider[1])],
                                   oidc_jwks_refresh_seconds=1, oidc_clock_skew_seconds=30)
    return await aiohttp_client(init_app(conf))


def _hs256(header: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    """A JWT signed by hand (PyJWT itself refuses an HMAC key that looks like a public key)."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signing = f"{part(header)}.{part(body)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status(api: Any, token: str) -> tuple[int, str]:
    resp = await api.get("/v1/orders", headers=bearer(token))
    return resp.status, (await resp.json()).get("error", {}).get("message", "")


async def test_tokens_of_the_provider_name_customers(api: Any, provider: tuple[Provider, str], db: Any) -> None:
    idp, _ = provider
    rsa_kid, ec_kid = idp.add("RS256"), idp.add("ES256")
    customer = str(uuid.uuid4())
    assert (await status(api, idp.token(rsa_kid, sub=customer)))[0] == 200
    assert (await status(api, idp.token(ec_kid)))[0] == 200
    assert idp.fetches == 1  # keys are cached

    code, why = await status(api, idp.token(rsa_kid, aud="someone-else"))
    assert code == 401 and "audience" in why.lower()
    assert (await status(api, idp.token(rsa_kid, expires_in=-10)))[0] == 200  # within the 30 s skew
    code, why = await status(api, idp.token(rsa_kid, expires_in=-60))
    assert code == 401 and "expired" in why.lower()
    code, why = await status(api, idp.token(rsa_kid, sub="not-a-uuid"))
    assert code == 401 and "sub" in why
    # a key the provider never published, under a published kid: the signature fails
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert (await status(api, idp.token(rsa_kid, key=stranger)))[0] == 401
    # the algorithm comes from the configuration: an HS256 token "signed" with the public key is refused
    public_pem = idp.keys[rsa_kid].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256({"alg": "HS256", "typ": "JWT", "kid": rsa_kid},
                    {"sub": customer, "aud": AUDIENCE, "iss": ISSUER, "iat": int(time.time()),
                     "exp": int(time.time()) + 60}, public_pem)
    assert (await status(api, forged))[0] == 401
    code, why = await status(api, idp.token(rsa_kid, iss="https://evil.example"))
    assert code == 401 and "issuer" in why


async def test_a_rotated_key_is_fetched_when_its_kid_appears(api: Any, provider: tuple[Provider, str]) -> None:
    idp, _ = provider
    old = idp.add("RS256")
    assert (await status(api, idp.token(old)))[0] == 200
    old_key = idp.keys[old]
    new = idp.rotate()
    await asyncio.sleep(1.1)  # the refresh interval (1 s here) since the first fetch
    assert (await status(api, idp.token(new)))[0] == 200  # unknown kid: the keys are fetched again
    assert idp.fetches == 2
    # the provider withdrew the old key: tokens signed with it are refused once the keys were refetched
    code, why = await status(api, idp.token(old, key=old_key))
    assert code == 401 and "unknown signing key" in why
    # made-up kids do not turn every request into a fetch (at most one per refresh interval)
    for _ in range(5):
        await status(api, idp.token("nope", key=old_key))
    assert idp.fetches <= 3


async def test_a_customer_of_the_provider_sees_only_their_orders(api: Any, provider: tuple[Provider, str],
                                                                 tokens: Any) -> None:
    idp, _ = provider
    kid = idp.add("ES256")
    me = str(uuid.uuid4())
    resp = await api.get("/v1/orders", headers=bearer(idp.token(kid, sub=me)))
    assert resp.status == 200 and (await resp.json())["items"] == []
    # a development token (beanpay's own issuer) still names a customer by its subject; the provider's
    # customer of the same subject is another one (tests/adversarial/test_accounts_identity.py)
    dev = await api.get("/v1/orders", headers=tokens.header("customer", sub=uuid.UUID(me)))
    assert dev.status == 200
