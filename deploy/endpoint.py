"""A small HTTP endpoint on 127.0.0.1 for the demo, the drills, the benches and the tests to receive what
beanpay sends (signed webhooks, Web Push, OTLP traces), and free ports for processes of their own."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; a process of the caller's takes it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Endpoint:
    """`handler` answering `method path` on 127.0.0.1 at a free port, from `start` to `stop`."""

    def __init__(self, handler: Handler, path: str = "/hooks", *, method: str = "POST", port: int | None = None,
                 access_log: bool = False) -> None:
        self.handler, self.path, self.method = handler, path, method
        self.port = port or free_port()
        self.access_log = access_log
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_route(self.method, self.path, self.handler)
        self.runner = web.AppRunner(app) if self.access_log else web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self.runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
