"""Request bodies and query strings into msgspec Structs, with every bad field named."""

from __future__ import annotations

import asyncio
import re
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from beanpay.api.state import SETTINGS
from beanpay.errors import Conflict, InvalidInput

T = TypeVar("T", bound=msgspec.Struct)

MAX_BODY = 256 * 1024


class MalformedBody(Exception):
    """Not JSON, or not a JSON object: a 400."""


class UnsupportedMediaType(Exception):
    """A body that is not JSON: a 415."""


class SlowBody(Exception):
    """The body did not arrive within the read timeout: a 408."""


JSON_TYPES = ("application/json",)


async def read_body(request: web.Request) -> bytes:
    """The request body, read within the body timeout; a body must be JSON (or absent)."""
    if request.body_exists and request.content_type not in JSON_TYPES and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {request.content_type or 'untyped'}")
    try:
        async with asyncio.timeout(request.app[SETTINGS].api_body_timeout_seconds):
            return await request.read()
    except TimeoutError:
        raise SlowBody("the body did not arrive in time") from None


async def decode_body(request: web.Request, kind: type[T]) -> T:
    raw = await read_body(request)
    if len(raw) > MAX_BODY:
        raise MalformedBody(f"body larger than {MAX_BODY} bytes")
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    _refuse_nul(data, "$")
    return convert(data, kind, strict=True)


def decode_query(request: web.Request, kind: type[T]) -> T:
    query = dict(request.query)
    _refuse_nul(query, "query")
    return convert(query, kind, strict=False, prefix="query")


def _refuse_nul(data: Any, prefix: str) -> None:
    """PostgreSQL text cannot hold U+0000; refuse it here, naming the field, rather than fail at the database."""
    bad = list(_nul_paths(data, prefix))
    if bad:
        raise InvalidInput("text may not contain NUL characters",
                           [{"field": path, "message": "contains a NUL (U+0000) character"} for path in bad])


def _nul_paths(data: Any, path: str) -> Iterator[str]:
    if isinstance(data, str):
        if "\x00" in data:
            yield path
    elif isinstance(data, dict):
        for key, value in data.items():
            if "\x00" in key:
                yield f"{path}.{key!r}"
            yield from _nul_paths(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _nul_paths(value, f"{path}[{i}]")


def convert(data: dict[str, Any], kind: type[T], *, strict: bool, prefix: str = "$") -> T:
    try:
        return msgspec.convert(data, kind, strict=strict)
    except msgspec.ValidationError:
        raise InvalidInput("request validation failed", field_errors(data, kind, strict, prefix)) from None


def field_errors(data: dict[str, Any], kind: type[msgspec.Struct], strict: bool, prefix: str) -> list[dict[str, str]]:
    """msgspec stops at the first error; check each field on its own to report them all."""
    errors = []
    hints = typing.get_type_hints(kind, include_extras=True)
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    for f in info.fields:
        if f.encode_name not in data:
            if f.required:
                errors.append({"field": f"{prefix}.{f.encode_name}", "message": "required field missing"})
            continue
        probe = msgspec.defstruct("Probe", [(f.encode_name, hints[f.name])])
        try:
            msgspec.convert({f.encode_name: data[f.encode_name]}, probe, strict=strict)
        except msgspec.ValidationError as exc:
            errors.append(_error(exc, prefix))
    known = {f.encode_name for f in info.fields}
    if info.forbid_unknown_fields:
        errors += [{"field": f"{prefix}.{k}", "message": "unknown field"} for k in data if k not in known]
    if not errors:  # a cross-field rule (e.g. __post_init__) failed
        try:
            msgspec.convert(data, kind, strict=strict)
        except msgspec.ValidationError as exc:
            errors.append(_error(exc, prefix))
    return errors


_NAMED = re.compile(r"^([a-z_]+): (.+)$")


def _error(exc: msgspec.ValidationError, prefix: str) -> dict[str, str]:
    text = str(exc)
    message, _, path = text.partition(" - at `")
    field = path.rstrip("`") if path else "$"
    if field == "$" and (named := _NAMED.match(message)):  # a rule of the body that names its field
        field, message = f"$.{named.group(1)}", named.group(2)
    return {"field": prefix + field[1:] if field.startswith("$") else field, "message": message}


S = TypeVar("S", bound=msgspec.Struct)


def patched_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually set (`version` is the precondition, not a field to write)."""
    return {f: v for f in patch.__struct_fields__ if f != "version" and (v := getattr(patch, f)) is not msgspec.UNSET}


def merged(current: S, patch: msgspec.Struct) -> S:
    """`current` with the fields the PATCH set: the row to write (every PATCH writes whole rows)."""
    return msgspec.structs.replace(current, **patched_fields(patch))


def check_version(patch: msgspec.Struct, current: int, what: str) -> None:
    expected = getattr(patch, "version", msgspec.UNSET)
    if expected is not msgspec.UNSET and expected != current:
        raise Conflict(f"stale update: the {what} is at version {current}", current_version=str(current))
