"""A blocking JSON-RPC probe for health checks (the services' real clients live in chains/)."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any


def call(url: str, method: str, params: list[Any] | None = None, *, auth: tuple[str, str] | None = None,
         timeout: float = 3.0) -> Any:
    # btcd wants "jsonrpc" and a non-null id, or it answers with an empty body
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL from config
        reply = json.loads(resp.read())
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]
