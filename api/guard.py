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

from beanpay.access import PERMISSIONS, Principal
from beanpay.api.accounts.principals import resolve
from beanpay.api.http import PRINCIPAL, Handler, who
from beanpay.errors import Forbidden, Unauthorized

POLICY: web.RequestKey[Policy] = web.RequestKey("policy", object)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Policy:
    who: str  # for people reading the API reference
    permission: str | None = None
    public: bool = False  # anonymous callers too
    customers: bool = False  # customers, for what is their own (the handler checks whose it is)
    operators_only: bool = False

    def __post_init__(self) -> None:
        if self.permission is not None and self.permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {self.permission!r}")


def public(who: str = "anyone") -> Policy:
    return Policy(who, public=True)


def needs(permission: str, who: str, *, customers: bool = False, public: bool = False) -> Policy:
    return Policy(who, permission, public=public, customers=customers)


def signed_in(who: str) -> Policy:
    """Any principal acting for itself (its own account, sessions, orders)."""
    return Policy(who)


OPERATORS = Policy("operators", operators_only=True)


def guarded(policy: Policy, handler: Handler) -> Handler:
    async def guard(request: web.Request) -> web.StreamResponse:
        principal = await resolve(request, public=policy.public)
        request[PRINCIPAL] = principal
        request[POLICY] = policy
        if not policy.public:
            if principal.kind == "anonymous":
                raise Unauthorized("sign in, or send a bearer token or API key")
            if policy.operators_only and not principal.operator:
                raise Forbidden("operators only")
            if (policy.permission is not None and not principal.may_somewhere(policy.permission)
                    and not (policy.customers and principal.kind == "customer")):
                raise Forbidden(f"this needs the {policy.permission} permission")
        return await handler(request)

    return guard


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
