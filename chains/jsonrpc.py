"""An async JSON-RPC 2.0-style client over aiohttp: single calls, batches, retries with backoff.

Shared by the Bitcoin and EVM clients. Every request carries `jsonrpc` and a non-null `id`
(btcd answers an empty body otherwise); errors are read from the body whatever the HTTP status
(btcd sends them with 200, bitcoind with 500). Transport failures, rate limits (429, honouring
`Retry-After`), gateway errors and garbled replies are retried; RPC errors are not; a provider that
refuses for good (credentials, a plan's quota) raises RpcRefused at once, so a pool fails over.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

T = TypeVar("T")
RETRY_AFTER_CAP = 10.0  # a longer wait is not waited out here: the caller (a pool) tries another endpoint


class RpcError(Exception):
    """The node answered with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message = method, code, message


class RpcUnavailable(Exception):
    """The node could not be reached or answered garbage, after retries. `retry_after`: seconds the
    node asked to be left alone (a rate limit), when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RpcRefused(RpcUnavailable):
    """Refused for good: credentials, or a plan's daily or monthly quota. Retrying will not help."""


class _Reply(msgspec.Struct):
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict[str, Any] | None = None


_decode_one = msgspec.json.Decoder(_Reply).decode
_decode_many = msgspec.json.Decoder(list[_Reply]).decode
# a node's JSON numbers with a fraction (BTC amounts, fee rates) become Decimal, never float
_decode_result = msgspec.json.Decoder(float_hook=Decimal).decode

# Quotas that only the next day or month (or a bigger plan) lift, as providers word them (Alchemy, Infura).
_QUOTA = re.compile(rb"(?i)capacity limit exceeded|daily request count exceeded|monthly .*limit|quota exceeded")
_RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})


def display_url(url: str) -> str:
    """The URL as logs and metrics may show it: providers put their API key in the path or the query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


_TOKEN = re.compile(rb"[A-Za-z0-9_-]{20,}")


def redacted(body: bytes) -> str:
    """The start of a provider's reply, for a log: long tokens (an echoed API key) blanked."""
    return _TOKEN.sub(b"<redacted>", body[:200]).decode("utf-8", "replace")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def refused_for_good(status: int, body: bytes) -> bool:
    return status in (401, 402, 403) or (status == 429 and _QUOTA.search(body[:2000]) is not None)


class JsonRpcClient:
    def __init__(self, url: str, *, auth: aiohttp.BasicAuth | None = None, version: str = "2.0",
                 keepalive: bool = True, timeout: float = 30.0, retries: int = 4, max_connections: int = 8,
                 name: str | None = None) -> None:
        self.url = url
        self.name = name or display_url(url)
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

    async def _exchange(self, body: bytes, what: str, decode: Callable[[bytes], T]) -> T:
        """POST `body` and decode the reply, retrying what a retry can fix."""
        delay = 0.2
        for attempt in range(self._retries + 1):
            wait = delay
            try:
                async with self._client().post(self.url, data=body,
                                               headers={"Content-Type": "application/json"}) as resp:
                    status, data, after = resp.status, await resp.read(), resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = type(exc).__name__  # not repr: it may carry the URL, and with it an API key
            else:
                if refused_for_good(status, data):
                    raise RpcRefused(f"{self.name}: {what} refused (HTTP {status}): {redacted(data)}")
                if status in _RETRYABLE_STATUS:
                    failure, asked = f"HTTP {status}", retry_after(after)
                    if asked is not None and asked > RETRY_AFTER_CAP:
                        raise RpcUnavailable(f"{self.name}: {what}: HTTP {status}, retry after {asked:.0f} s",
                                             retry_after=asked)
                    wait = max(wait, asked or 0.0)
                elif not data:
                    failure = f"HTTP {status} with an empty reply"
                else:
                    try:
                        return decode(data)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        failure = f"not a JSON-RPC reply: {redacted(data)}"
            if attempt == self._retries:
                raise RpcUnavailable(f"{self.name}: {what}: {failure} after {attempt + 1} attempts")
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _request(self, method: str, params: Any, request_id: int) -> dict[str, Any]:
        return {"jsonrpc": self._version, "id": request_id, "method": method, "params": params}

    async def call(self, method: str, *params: Any) -> Any:
        body = msgspec.json.encode(self._request(method, params, next(self._ids)))
        return _result(method, await self._exchange(body, method, _decode_one))

    async def batch(self, calls: list[tuple[str, tuple[Any, ...]]], *, errors_as_values: bool = False) -> list[Any]:
        """Many calls in one HTTP request; results in the order of `calls`. An error reply raises, or,
        with `errors_as_values`, takes its call's place as an RpcError."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        body = msgspec.json.encode([self._request(m, p, i) for i, (m, p) in zip(ids, calls, strict=True)])
        replies = await self._exchange(body, f"batch of {calls[0][0]}", _decode_batch)
        if isinstance(replies, _Reply):  # the whole batch refused with one error (too large, not allowed)
            _result(f"batch of {calls[0][0]}", replies)
            raise RpcUnavailable(f"{self.name}: batch of {calls[0][0]}: one reply to a batch")
        by_id = {r.id: r for r in replies}
        if set(by_id) != set(ids):
            raise RpcUnavailable(f"{self.name}: batch of {calls[0][0]}: replies do not match the requests")
        results = []
        for i, (method, _) in zip(ids, calls, strict=True):
            try:
                results.append(_result(method, by_id[i]))
            except RpcError as exc:
                if not errors_as_values:
                    raise
                results.append(exc)
        return results


def _decode_batch(data: bytes) -> list[_Reply] | _Reply:
    try:
        return _decode_many(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        reply = _decode_one(data)  # raises DecodeError again when it is not even that
        if reply.error is None:
            raise
        return reply


def _result(method: str, reply: _Reply) -> Any:
    if reply.error:
        raise RpcError(method, int(reply.error.get("code", 0)), str(reply.error.get("message")))
    return _decode_result(reply.result)
