"""Every route's access policy, and the guard that applies it before the handler runs.

A route names the one permission it needs (`needs("orders:write", ...)`) or says it is public; the
guard resolves the principal, refuses anonymous callers (401) and principals that hold the permission
nowhere (403), and the handler, once it knows which shop the request touches, calls `allow` for that
shop. A test built from the route table fails when a route has no policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from beanpay.access import ANONYMOUS, PERMISSIONS, Principal
from beanpay.api.accounts.principals import resolve
from beanpay.api.http import PRINCIPAL, Handler, who
from beanpay.api.ratelimit import client_ip, headers
from beanpay.api.state import LIMITER, TRUSTED_PROXIES, settings
from beanpay.errors import Forbidden, RateLimited, Unauthorized

POLICY: web.RequestKey[Policy] = web.RequestKey("policy", object)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Policy:
    who: str  # for people reading the API reference
    permission: str | None = None
    public: bool = False  # anonymous callers too
    customers: bool = False  # customers, for what is their own (the handler checks whose it is)
    operators_only: bool = False
    guest_writes: bool = False  # creates orders or invoices for anonymous callers: their own, tighter limit
    limited: bool = True  # health checks and metrics are not rate-limited

    def __post_init__(self) -> None:
        if self.permission is not None and self.permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {self.permission!r}")


def public(who: str = "anyone", *, limited: bool = True) -> Policy:
    return Policy(who, public=True, limited=limited)


def needs(permission: str, who: str, *, customers: bool = False, guests: bool = False) -> Policy:
    """`guests`: anonymous callers may call it too (placing an order), under the guest limit."""
    return Policy(who, permission, public=guests, customers=customers, guest_writes=guests)


def signed_in(who: str) -> Policy:
    """Any principal acting for itself (its own account, sessions, orders)."""
    return Policy(who)


OPERATORS = Policy("operators", operators_only=True)


def guarded(policy: Policy, handler: Handler) -> Handler:
    async def guard(request: web.Request) -> web.StreamResponse:
        try:
            principal = await resolve(request, public=policy.public)
        except Unauthorized:
            if policy.limited:  # guessing credentials spends the address's budget
                await _limit(request, ANONYMOUS, policy)
            raise
        request[PRINCIPAL] = principal
        request[POLICY] = policy
        limits = await _limit(request, principal, policy) if policy.limited else None
        if not policy.public:
            if principal.kind == "anonymous":
                raise Unauthorized("sign in, or send a bearer token or API key")
            if policy.operators_only and not principal.operator:
                raise Forbidden("operators only")
            if (policy.permission is not None and not principal.may_somewhere(policy.permission)
                    and not (policy.customers and principal.kind == "customer")):
                raise Forbidden(f"this needs the {policy.permission} permission")
        response = await handler(request)
        if limits is not None:
            response.headers.update(limits)
        return response

    return guard


async def _limit(request: web.Request, principal: Principal, policy: Policy) -> dict[str, str] | None:
    """Spend the request from its buckets: a refusal is a 429; otherwise the RateLimit headers."""
    conf = settings(request)
    if not conf.rate_limits:
        return None
    limiter = request.app[LIMITER]
    if principal.kind == "anonymous":
        ip = client_ip(request, request.app[TRUSTED_PROXIES])
        if policy.guest_writes and request.method == "POST":
            name, bucket, limit = "guest-orders", f"guest:{ip}", conf.rate_limit_public_orders
        else:
            name, bucket, limit = "anonymous", f"ip:{ip}", conf.rate_limit_anonymous
    elif principal.kind == "api_key":
        name, bucket, limit = "api-key", f"key:{principal.id}", conf.rate_limit_api_key
    else:
        name, bucket, limit = "principal", f"{principal.kind}:{principal.id}", conf.rate_limit_principal
    decision = await limiter.take(bucket, limit)
    found = headers(decision, name)
    if not decision.allowed:
        raise RateLimited(f"too many requests; try again in {decision.reset_seconds} s", found)
    return found


def allow(request: web.Request, shop_id: uuid.UUID) -> Principal:
    """The principal, if it holds the route's permission on `shop_id`; otherwise a 403."""
    principal = who(request)
    permission = request[POLICY].permission
    if permission is not None and not principal.may(permission, shop_id):
        raise Forbidden(f"you do not hold {permission} on this shop")
    return principal


def may(request: web.Request, shop_id: uuid.UUID, permission: str | None = None) -> bool:
    """Whether the principal holds `permission` (default: the route's) on `shop_id`."""
    needed = permission or request[POLICY].permission
    return needed is not None and who(request).may(needed, shop_id)
