"""JSON encoding for payloads and results, strict about what JSON can hold. Pure."""

from __future__ import annotations

import json
from typing import Any

from durableq.errors import InvalidInput

MAX_PAYLOAD_BYTES = 8 * 1024 * 1024


def encode(value: Any) -> str:
    """Compact JSON; NaN, infinities and non-JSON objects are refused."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode_payload(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the payload must be a JSON object, not {_json_kind(payload)}; e.g. '{{\"n\": 1}}'"
        )
    try:
        text = encode(payload)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"the payload is not JSON-serialisable: {error}") from None
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            "the payload is larger than 8 MiB; store big data elsewhere and pass a key"
        )
    return text


def parse_payload(text: str) -> dict[str, Any]:
    """A payload given as JSON text by a user."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"the payload is not valid JSON ({error.msg} at line {error.lineno} "
            f"column {error.colno}); e.g. '{{\"n\": 1}}'"
        ) from None
    except RecursionError:
        raise InvalidInput("the payload is nested too deeply") from None
    encode_payload(value)  # the same checks as the library applies
    return value  # type: ignore[no-any-return]


def _refuse_constant(name: str) -> Any:
    raise InvalidInput(
        f"the payload contains {name}, which JSON does not allow; use null or a string"
    )


def _json_kind(value: Any) -> str:
    kinds = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    if value is None:
        return "null"
    return kinds.get(type(value), type(value).__name__)


def decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)
