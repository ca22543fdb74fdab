"""Who may do what: permissions, the roles that hold them, and the principal a request acts as.

Pure rules, no I/O. A principal is resolved once per request (session, API key, identity-provider
token or development token) and every route names the one permission it needs; the handler asks
`may(permission, shop_id)` once it knows which shop the request touches.
"""

from __future__ import annotations

import uuid
from typing import Literal, get_args

import msgspec

Permission = Literal[
    "shops:create",      # open a new shop (operators)
    "shops:write",       # change a shop's details and status
    "wallets:manage",    # where a shop's money goes: its own receiving wallets
    "shops:delete",
    "shops:read-deleted",  # see deleted shops and products
    "catalog:write",     # products and menus
    "supplies:read",
    "supplies:write",
    "orders:create",     # place an order or invoice (customers, guests, integrations)
    "orders:read",       # a shop's orders
    "orders:write",      # move a shop's orders along, cancel them
    "payments:resolve",  # settle a payment exception
    "claims:redeem",     # hand a paid order over at the counter
    "refunds:create",
    "invoices:create",
    "ledger:read",
    "webhooks:manage",
    "members:manage",    # invite and remove a shop's staff
    "api-keys:manage",
    "users:manage",      # accounts of other people (operators)
]
PERMISSIONS: frozenset[str] = frozenset(get_args(Permission))

ShopRole = Literal["owner", "manager", "staff"]
SHOP_ROLES: tuple[str, ...] = get_args(ShopRole)

_STAFF = frozenset({"supplies:read", "supplies:write", "orders:read", "orders:write", "claims:redeem"})
_MANAGER = _STAFF | {"catalog:write", "payments:resolve", "refunds:create", "invoices:create", "ledger:read",
                     "webhooks:manage", "shops:write", "orders:create", "members:manage"}
_OWNER = _MANAGER | {"api-keys:manage", "shops:read-deleted", "wallets:manage"}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {"staff": _STAFF, "manager": _MANAGER, "owner": _OWNER}
# what a shop role may hand out (invite to, change to, remove from): managers manage staff only
MAY_INVITE: dict[str, frozenset[str]] = {"owner": frozenset(SHOP_ROLES), "manager": frozenset({"staff"}),
                                         "staff": frozenset()}
# an integration acts for a shop; it can never administer people or keys, nor open shops
KEY_PERMISSIONS: frozenset[str] = _MANAGER - {"members:manage"}
# a customer's own actions; what touches a customer's own order is checked against its owner
CUSTOMER_PERMISSIONS: frozenset[str] = frozenset({"orders:create"})

Kind = Literal["anonymous", "customer", "user", "api_key"]


class Principal(msgspec.Struct, frozen=True):
    """Who a request acts as. `id` is the customer's `sub`, the user's id or the key's id."""

    kind: Kind
    id: uuid.UUID | None = None
    operator: bool = False
    grants: dict[uuid.UUID, str] = {}  # shop -> role, for users
    permissions: frozenset[str] = frozenset()  # for API keys: what the key was given
    shops: frozenset[uuid.UUID] = frozenset()  # for API keys: the shops it acts for
    second_factor: bool = False

    def may(self, permission: str, shop_id: uuid.UUID | None = None) -> bool:
        """Whether this principal holds `permission` (on `shop_id`, when the action touches a shop)."""
        if self.operator:
            return True
        if self.kind == "customer":
            return permission in CUSTOMER_PERMISSIONS
        if self.kind == "api_key":
            return permission in self.permissions and (shop_id is None or shop_id in self.shops)
        if self.kind == "user":
            if shop_id is None:
                return any(permission in ROLE_PERMISSIONS[r] for r in self.grants.values())
            role = self.grants.get(shop_id)
            return role is not None and permission in ROLE_PERMISSIONS[role]
        return False

    def may_somewhere(self, permission: str) -> bool:
        """Holds `permission` on at least one shop (routes check this before the shop is known)."""
        return self.may(permission, None)

    def shops_with(self, permission: str) -> frozenset[uuid.UUID] | None:
        """The shops this principal holds `permission` on; None means every shop (operators)."""
        if self.operator:
            return None
        if self.kind == "api_key":
            return self.shops if permission in self.permissions else frozenset()
        return frozenset(s for s, r in self.grants.items() if permission in ROLE_PERMISSIONS[r])

    @property
    def role(self) -> str:
        """One word for audit rows and logs."""
        if self.operator:
            return "operator"
        return {"user": "staff" if set(self.grants.values()) <= {"staff"} else "merchant"}.get(self.kind, self.kind)

    @property
    def owner_key(self) -> str:
        """A stable string naming this principal (what an idempotency key belongs to)."""
        if self.kind == "anonymous":
            return "anonymous"
        shops = ",".join(sorted(str(s) for s in (self.shops or self.grants)))
        return f"{self.kind}:{self.id}:{'op' if self.operator else ''}:{shops}"


ANONYMOUS = Principal(kind="anonymous")


def grantable(granter: Principal, permissions: set[str], shops: set[uuid.UUID]) -> list[tuple[str, str]]:
    """What an API key asked for that its creator may not give, as (field, why): each permission must be
    one a key may hold, and the creator must hold it on every shop the key is for."""
    problems = [("permissions", f"{p!r} is not a permission") for p in sorted(permissions - PERMISSIONS)]
    problems += [("permissions", f"{p!r} cannot be given to an API key")
                 for p in sorted((permissions & PERMISSIONS) - KEY_PERMISSIONS)]
    for shop in sorted(shops, key=str):
        if not granter.may("api-keys:manage", shop):
            problems.append(("shop_ids", f"you may not create keys for shop {shop}"))
            continue
        missing = sorted(p for p in permissions & KEY_PERMISSIONS if not granter.may(p, shop))
        if missing:
            problems.append(("permissions", f"you do not hold {', '.join(missing)} on shop {shop}"))
    return problems
