"""A route table that remembers each route's types, so OpenAPI is generated, not written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from beanpay.api.guard import Policy, guarded
from beanpay.api.http import Handler
from beanpay.api.idempotency import idempotent


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    policy: Policy
    body: type | None = None
    query: type | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()
    inline_idempotency: bool = False  # the handler looks its Idempotency-Key up in its own first statement

    def __post_init__(self) -> None:
        if self.method == "POST" and "Idempotency-Key" not in self.headers:
            object.__setattr__(self, "headers", (*self.headers, "Idempotency-Key"))


@dataclass
class Routes:
    routes: list[Route] = field(default_factory=list)

    def add(self, method: str, path: str, *, summary: str, tag: str, policy: Policy,
            **kw: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, summary, tag, policy, **kw))
            return handler

        return register


def install(app: web.Application, routes: list[Route]) -> None:
    """One resource per path, holding all its methods. aiohttp tries the resources under a path prefix
    one by one, so a path registered once per method made a menu read try eight patterns, not five."""
    resources: dict[str, web.Resource] = {}
    for r in routes:
        if r.path not in resources:
            resources[r.path] = app.router.add_resource(r.path)
        handler = idempotent(r.handler, inline=r.inline_idempotency) if r.method == "POST" else r.handler
        resources[r.path].add_route(r.method, guarded(r.policy, handler))
