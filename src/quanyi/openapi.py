"""The OpenAPI document tells the truth about errors: every error answer is an RFC 9457 problem
document (`application/problem+json`), so the schema documents that instead of FastAPI's default
`HTTPValidationError` shape, which this shop never sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install_problem_responses", "PROBLEM_SCHEMA"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem document; `code` is stable and machine-readable, `detail` is for humans.",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:quanyi:problem:validation_failed"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Per-field problems of a request that failed validation.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                               "type": {"type": "string"}},
            },
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (also in the Retry-After header)."},
    },
    "additionalProperties": True,
}

_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status.startswith(("4", "5")):
                    response["content"] = dict(_PROBLEM_CONTENT)
            responses.setdefault("422", {"description": "Validation failed"})["content"] = dict(_PROBLEM_CONTENT)
            responses.setdefault("4XX", {"description": "The request was refused; nothing was changed",
                                         "content": dict(_PROBLEM_CONTENT)})
            responses.setdefault("503", {"description": "Unavailable for a moment (e.g. the database connection "
                                                        "was lost); retry after Retry-After seconds",
                                         "content": dict(_PROBLEM_CONTENT)})
    return schema


def install_problem_responses(app: FastAPI) -> None:
    """Replace `app.openapi` with one that documents problem responses on every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(get_openapi(
                title=app.title, version=app.version, summary=app.summary, description=app.description,
                routes=app.routes, tags=app.openapi_tags, servers=app.servers,
            ))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
