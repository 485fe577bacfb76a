"""JSON encoding for payloads and results, strict about what JSON can hold. Pure."""

from __future__ import annotations

import json
from typing import Any

from durableq.core.errors import InvalidInput

MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# One encoder for every call: json.dumps with non-default options builds a new one each time,
# which was a third of enqueue_many's Python time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode(value: Any) -> str:
    """Compact JSON; NaN, infinities, lone surrogates and non-JSON objects are refused."""
    return _encode(value)[0]


def _encode(value: Any) -> tuple[str, int]:
    """The JSON text and its size in UTF-8 bytes."""
    text = _ENCODER.encode(value)
    # A lone surrogate (e.g. from undecodable bytes) has no UTF-8 form, so no database can
    # store it: refusing it here, as a ValueError (UnicodeEncodeError), names the culprit.
    return text, len(text.encode())


def encode_payload(payload: Any) -> str:
    if payload == {} and type(payload) is dict:  # the commonest payload of all
        return "{}"
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"the payload must be a JSON object, not {_json_kind(payload)}; e.g. '{{\"n\": 1}}'"
        )
    try:
        text, size = _encode(payload)
    except UnicodeEncodeError as error:
        raise InvalidInput(
            f"the payload has text that is not valid Unicode ({error.reason} at character "
            f"{error.start} of its JSON), e.g. from bytes that are not UTF-8"
        ) from None
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"the payload is not JSON-serialisable: {error}") from None
    except RecursionError:
        raise InvalidInput("the payload is nested too deeply") from None
    if size > MAX_PAYLOAD_BYTES:
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
    except ValueError as error:  # Python's bound on integer digits (4,300 by default)
        raise InvalidInput(huge_number(error)) from None
    encode_payload(value)  # the same checks as the library applies
    return value  # type: ignore[no-any-return]


def huge_number(error: ValueError) -> str:
    """The message for a JSON number Python refuses to read (too many digits)."""
    detail = str(error).split(";")[0]
    return f"the payload has a number too long to read ({detail}); send it as a string"


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
