"""Request bodies and query strings into msgspec Structs, with every bad field named."""

from __future__ import annotations

import typing
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from beanpay.errors import InvalidInput

T = TypeVar("T", bound=msgspec.Struct)

MAX_BODY = 256 * 1024


class MalformedBody(Exception):
    """Not JSON, or not a JSON object: a 400."""


async def decode_body(request: web.Request, kind: type[T]) -> T:
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise MalformedBody(f"body larger than {MAX_BODY} bytes")
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return convert(data, kind, strict=True)


def decode_query(request: web.Request, kind: type[T]) -> T:
    return convert(dict(request.query), kind, strict=False, prefix="query")


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


def _error(exc: msgspec.ValidationError, prefix: str) -> dict[str, str]:
    text = str(exc)
    message, _, path = text.partition(" - at `")
    field = path.rstrip("`") if path else "$"
    return {"field": prefix + field[1:] if field.startswith("$") else field, "message": message}
