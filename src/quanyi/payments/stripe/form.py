"""Stripe's request encoding: application/x-www-form-urlencoded with nested keys.

Spec: https://docs.stripe.com/api (request bodies are form-encoded; "Metadata" and "Expanding responses")
— nested objects as `a[b][c]=v`, arrays as `a[0][b]=v`. `decode_form` is the inverse, for the test peer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["encode_form", "decode_form", "FormError"]

_KEY = re.compile(r"^([A-Za-z0-9_]+)((?:\[[A-Za-z0-9_.\-]*\])*)$")
_MAX_DEPTH = 6


class FormError(ValueError):
    pass


def encode_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """{'a': {'b': [{'c': 1}]}} -> [('a[b][0][c]', '1')]; None values are left out, bools are true/false."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        elif isinstance(value, int | str):
            pairs.append((prefix, str(value)))
        else:
            raise TypeError(f"cannot form-encode {type(value).__name__} at {prefix}")

    for key, value in params.items():
        walk(key, value)
    return pairs


def decode_form(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The inverse of encode_form; arrays come back as dicts keyed by index string ('0', '1', ...)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise FormError(f"malformed parameter name {key!r}")
        path = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        if len(path) > _MAX_DEPTH or any(part == "" for part in path):
            raise FormError(f"unsupported parameter name {key!r}")
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise FormError(f"parameter {key!r} conflicts with another")
            node = child
        if path[-1] in node:
            raise FormError(f"repeated parameter {key!r}")
        node[path[-1]] = value
    return result
