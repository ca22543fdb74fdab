"""OpenAPI 3.1 from the route table and the msgspec types."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from beanpay.api.routing import Route
from beanpay.api.schemas import ErrorBody

_STATUS_TEXT = {400: "Malformed request", 401: "Missing or invalid token", 403: "Not allowed",
                404: "Not found", 409: "Conflict", 422: "Validation failed"}


def build(routes: list[Route], *, title: str = "beanpay API", version: str = "1") -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for r in routes:
        types += [t for t in (r.body, r.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, schemas, strict=True))
    error_ref = by_type[ErrorBody]

    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag], "operationId": r.handler.__name__}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                  for name in re.findall(r"{(\w+)}", r.path)]
        if r.query is not None:
            params += _query_params(r.query)
        params += [{"name": h, "in": "header", "required": False, "schema": {"type": "string"}} for h in r.headers]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": by_type[r.body]}}}
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": by_type[r.response]}}
        op["responses"] = {str(r.status): ok} | {
            str(code): {"description": _STATUS_TEXT.get(code, "Error"),
                        "content": {"application/json": {"schema": error_ref}}}
            for code in r.errors
        }
        needs = f" Needs `{r.policy.permission}`." if r.policy.permission else ""
        op["description"] = f"Allowed: {r.policy.who}.{needs}"
        if not r.policy.public:
            op["security"] = [{"bearer": []}, {"session": []}]
        links = _links(r, routes)
        if links:
            ok["links"] = links
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer",
                                      "description": "an API key (bp_...) or an identity provider's access token"},
                           "session": {"type": "apiKey", "in": "cookie", "name": "bp_session",
                                       "description": "a signed-in session; writes also send X-CSRF-Token"}}},
    }


def _links(created: Route, routes: list[Route]) -> dict[str, Any]:
    """OpenAPI links from a route that creates a resource (201, an `id` in its answer) to the routes of
    that resource: a client, or a stateful fuzzer, follows them with the new id (`$response.body#/id`)."""
    if (created.method != "POST" or created.status != 201 or "{" in created.path.rsplit("/", 1)[-1]
            or "id" not in getattr(created.response, "__struct_fields__", ())):
        return {}
    noun = created.path.rsplit("/", 1)[-1]
    name = ("supply" if noun == "supplies" else noun.removesuffix("s")) + "_id"
    inherited = re.findall(r"{(\w+)}", created.path)
    links = {}
    for r in routes:
        if r.path.startswith(f"{created.path}/{{{name}}}"):
            params = {name: "$response.body#/id", **{p: f"$request.path.{p}" for p in inherited}}
            links[r.handler.__name__] = {"operationId": r.handler.__name__, "parameters": params}
    return links


def _query_params(kind: type) -> list[dict[str, Any]]:
    (schema,), components = msgspec.json.schema_components([kind], ref_template="{name}")
    body = components[schema["$ref"]]
    required = set(body.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in body["properties"].items()]
