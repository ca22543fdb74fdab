"""Every route's access policy, and the guard that applies it before the handler runs.

A route names the one permission it needs (`needs("orders:write", ...)`) or says it is public; the
guard resolves the principal, refuses anonymous callers (401) and principals that hold the permission
nowhere (403), and the handler, once it knows which shop the request touches, calls `allow` for that
shop. A test built from the route table fails when a route has no policy.

An operator may do anything anywhere, so a password alone is not enough for it: an operator signed in
without the second factor is refused every write (any method but GET and HEAD) of a route a principal's
rights open, except signing out, setting TOTP up and changing the password (`before_second_factor`). One
rule here, not a flag per route, so a route added later cannot forget it. Public routes grant an operator
nothing beyond what anyone has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from beanpay.access import ANONYMOUS, PERMISSIONS, Principal
from beanpay.api.accounts.principals import refuse_without_second_factor, resolve
from beanpay.api.http import PRINCIPAL, Handler, who
from beanpay.api.ratelimit import client_ip, headers, network_of
from beanpay.api.state import LIMITER, SETTINGS, TRUSTED_PROXIES
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
    second_factor: bool = False  # only a principal signed in with the second factor, whoever it is
    # an operator not yet signed in with the second factor may call it (a write: see the module's docstring)
    before_second_factor: bool = False

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


def before_second_factor(who: str) -> Policy:
    """Any principal acting for itself, operators signed in by password alone included: what they need to
    turn the second factor on (sign out, set TOTP up, change the password)."""
    return Policy(who, before_second_factor=True)


OPERATORS = Policy("operators", operators_only=True)  # their writes need the second factor (the guard's rule)
OPERATORS_2FA = Policy("operators, signed in with their second factor", operators_only=True, second_factor=True)
_READS = frozenset({"GET", "HEAD"})


class _Limits:
    """What the guard needs of the app's rate limits, looked up once: at 20,000 requests a second a
    request has 50 us in all, and the limiter's share of that is to stay under 5%."""

    __slots__ = ("anonymous", "guests", "key", "limiter", "on", "principal", "trusted")

    def __init__(self, app: web.Application) -> None:
        conf = app[SETTINGS]
        self.on, self.limiter, self.trusted = conf.rate_limits, app[LIMITER], app[TRUSTED_PROXIES]
        self.guests, self.anonymous = conf.rate_limit_public_orders, conf.rate_limit_anonymous
        self.key, self.principal = conf.rate_limit_api_key, conf.rate_limit_principal


def guarded(policy: Policy, handler: Handler) -> Handler:
    limits: _Limits | None = None  # one app per installed route table

    async def guard(request: web.Request) -> web.StreamResponse:
        nonlocal limits
        if limits is None:
            limits = _Limits(request.app)
        sent = request.headers  # not `headers`: that name is the RateLimit fields' builder
        try:
            # most reads carry no credentials at all: no lookup to await
            principal = (await resolve(request, public=policy.public)
                         if "Authorization" in sent or "Cookie" in sent else ANONYMOUS)
        except Unauthorized:
            if policy.limited and limits.on and (empty := _spend(request, limits, ANONYMOUS, policy)) is not None:
                await _refill(request, *empty)  # guessing credentials spends the address's budget
            raise
        if principal is not ANONYMOUS:  # who() answers ANONYMOUS without it
            request[PRINCIPAL] = principal
        request[POLICY] = policy
        # the common case stays synchronous (a lease in memory); only an empty lease waits on Redis
        if policy.limited and limits.on and (empty := _spend(request, limits, principal, policy)) is not None:
            await _refill(request, *empty)
        if not policy.public:
            if principal.kind == "anonymous":
                raise Unauthorized("sign in, or send a bearer token or API key")
            if policy.operators_only and not principal.operator:
                raise Forbidden("operators only")
            if not principal.second_factor and (policy.second_factor or (
                    principal.operator and request.method not in _READS and not policy.before_second_factor)):
                await refuse_without_second_factor(request, principal)
            if (policy.permission is not None and not principal.may_somewhere(policy.permission)
                    and not (policy.customers and principal.kind == "customer")):
                raise Forbidden(f"this needs the {policy.permission} permission")
        return await handler(request)

    return guard


def _spend(request: web.Request, limits: _Limits, principal: Principal,
           policy: Policy) -> tuple[str, str, int] | None:
    """Spend the request from this process's lease of its bucket; None if it may go on, else (policy name,
    bucket, limit) for a refill from Redis."""
    if principal.kind == "anonymous":
        ip = network_of((client_ip(request, limits.trusted) if limits.trusted else request.remote) or "unknown")
        if policy.guest_writes and request.method == "POST":
            name, bucket, limit = "guest-orders", f"guest:{ip}", limits.guests
        else:
            name, bucket, limit = "anonymous", f"ip:{ip}", limits.anonymous
    elif principal.kind == "api_key":
        name, bucket, limit = "api-key", f"key:{principal.id}", limits.key
    else:
        name, bucket, limit = "principal", f"{principal.kind}:{principal.id}", limits.principal
    return None if limits.limiter.spend(bucket) else (name, bucket, limit)


async def _refill(request: web.Request, name: str, bucket: str, limit: int) -> None:
    """The lease was empty: take one from Redis; a refusal is a 429 with Retry-After and the RateLimit fields."""
    refused = await request.app[LIMITER].take(bucket, limit)
    if refused is not None:
        raise RateLimited(f"too many requests; try again in {refused.reset_seconds} s", headers(refused, name))


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
