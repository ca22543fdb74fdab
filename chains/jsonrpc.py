"""An async JSON-RPC 2.0-style client over aiohttp: single calls, batches, retries with backoff.

Shared by the Bitcoin and EVM clients. Every request carries `jsonrpc` and a non-null `id`
(btcd answers an empty body otherwise); errors are read from the body whatever the HTTP status
(btcd sends them with 200). Transport failures are retried; RPC errors are not.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec


class RpcError(Exception):
    """The node answered with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message = method, code, message


class RpcUnavailable(Exception):
    """The node could not be reached or answered garbage, after retries."""


class _Reply(msgspec.Struct):
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, Any] | None = None


_decode_one = msgspec.json.Decoder(_Reply).decode
_decode_many = msgspec.json.Decoder(list[_Reply]).decode
# a node's JSON numbers with a fraction (BTC amounts, fee rates) become Decimal, never float
_decode_result = msgspec.json.Decoder(float_hook=Decimal).decode


class JsonRpcClient:
    def __init__(self, url: str, *, auth: aiohttp.BasicAuth | None = None, version: str = "2.0",
                 keepalive: bool = True, timeout: float = 30.0, retries: int = 4, max_connections: int = 8) -> None:
        self.url = url
        self._auth = auth
        self._version = version
        self._keepalive = keepalive
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._max_connections = max_connections
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                auth=self._auth, timeout=self._timeout,
                connector=aiohttp.TCPConnector(force_close=not self._keepalive, limit=self._max_connections),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, body: bytes) -> bytes:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                async with self._client().post(self.url, data=body,
                                               headers={"Content-Type": "application/json"}) as resp:
                    data = await resp.read()
                    if resp.status in (401, 403):
                        raise RpcUnavailable(f"{self.url}: authentication refused (HTTP {resp.status})")
                    if data:
                        return data
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                      message="empty reply")
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == self._retries:
                    raise RpcUnavailable(f"{self.url}: {exc!r} after {attempt + 1} attempts") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _request(self, method: str, params: Any, request_id: int) -> dict[str, Any]:
        return {"jsonrpc": self._version, "id": request_id, "method": method, "params": params}

    async def call(self, method: str, *params: Any) -> Any:
        raw = await self._post(msgspec.json.encode(self._request(method, params, next(self._ids))))
        try:
            reply = _decode_one(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RpcUnavailable(f"{method}: not a JSON-RPC reply: {raw[:200]!r}") from exc
        return _result(method, reply)

    async def batch(self, calls: list[tuple[str, tuple[Any, ...]]], *, errors_as_values: bool = False) -> list[Any]:
        """Many calls in one HTTP request; results in the order of `calls`. An error reply raises, or,
        with `errors_as_values`, takes its call's place as an RpcError."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        body = msgspec.json.encode([self._request(m, p, i) for i, (m, p) in zip(ids, calls, strict=True)])
        raw = await self._post(body)
        try:
            replies = _decode_many(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RpcUnavailable(f"batch of {calls[0][0]}: not a JSON-RPC batch reply: {raw[:200]!r}") from exc
        by_id = {r.id: r for r in replies}
        if set(by_id) != set(ids):
            raise RpcUnavailable(f"batch of {calls[0][0]}: replies do not match the requests")
        results = []
        for i, (method, _) in zip(ids, calls, strict=True):
            try:
                results.append(_result(method, by_id[i]))
            except RpcError as exc:
                if not errors_as_values:
                    raise
                results.append(exc)
        return results


def _result(method: str, reply: _Reply) -> Any:
    if reply.error:
        raise RpcError(method, int(reply.error.get("code", 0)), str(reply.error.get("message")))
    return _decode_result(reply.result)
