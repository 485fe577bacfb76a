"""Payload validation: JSON objects only, no NaN, nothing JSON cannot hold."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pytest

from durableq.core import payloads
from durableq.core.errors import InvalidInput


def test_object_payload_is_encoded_compactly() -> None:
    assert payloads.encode_payload({"n": 1, "s": "é", "l": [1, None]}) == (
        '{"n":1,"s":"é","l":[1,null]}'
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([1, 2], "an array"),
        ("text", "a string"),
        (3, "a number"),
        (None, "null"),
        (True, "a boolean"),
    ],
)
def test_non_object_payload_is_refused_naming_its_kind(value: Any, kind: str) -> None:
    with pytest.raises(InvalidInput, match=f"must be a JSON object, not {kind}"):
        payloads.encode_payload(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_refused(bad: float) -> None:
    with pytest.raises(InvalidInput, match="not JSON-serialisable"):
        payloads.encode_payload({"x": bad})


@pytest.mark.parametrize("bad", [object(), datetime(2026, 1, 1), {1, 2}, b"bytes"])
def test_non_serialisable_values_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not JSON-serialisable"):
        payloads.encode_payload({"x": bad})


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(InvalidInput, match="larger than 8 MiB"):
        payloads.encode_payload({"blob": "x" * (payloads.MAX_PAYLOAD_BYTES + 1)})


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'])
def test_parsed_payload_refuses_nan_constants(text: str) -> None:
    with pytest.raises(InvalidInput, match="JSON does not allow"):
        payloads.parse_payload(text)


@pytest.mark.parametrize("text", ["{", "{'a': 1}", "", "{} extra"])
def test_parsed_payload_refuses_invalid_json_saying_where(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"not valid JSON \(.* at line \d+ column \d+\)"):
        payloads.parse_payload(text)


def test_parsed_payload_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="not an array"):
        payloads.parse_payload("[1]")


def test_deeply_nested_payload_is_refused_cleanly() -> None:
    with pytest.raises(InvalidInput, match=r"nested too deeply"):
        payloads.parse_payload('{"a":' * 100_000 + "1" + "}" * 100_000)


def test_round_trip() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert payloads.decode(payloads.encode_payload(value)) == value
    assert json.loads(payloads.encode(value)) == value
    assert payloads.decode(None) is None
