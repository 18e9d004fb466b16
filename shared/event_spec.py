"""Is an incoming HTTP request a CloudEvent as the CloudEvents 1.0 specification says?

Checked on the request itself, before the SDK reads it: the SDK lowercases extension names,
fills in a missing ``time`` and decodes ``data_base64`` over ``data``, so what is wrong with an
event is gone once it is parsed. Every event handler checks here first (:mod:`shared.eventfn`)
and answers 400 (poison, never retried) for anything that breaks the specification:

- ``specversion`` is ``1.0``; ``id``, ``source``, ``type`` are non-empty strings;
- ``time`` is an RFC 3339 timestamp with seconds and a valid offset;
  ``datacontenttype`` an RFC 2046 media type; ``dataschema``, ``subject`` non-empty;
- extension names are lower-case letters and digits; their values a string, a boolean or an
  integer within 32 bits (the JSON format's types for Binary, URI and Timestamp are strings);
- structured mode (JSON format): not both ``data`` and ``data_base64``.

Sources: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md (context
attributes, type system, naming), .../formats/json-format.md, .../bindings/http-protocol-binding.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shared.errors import BadRequest

SPEC_VERSION = "1.0"
REQUIRED = ("id", "source", "type")
OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
STRUCTURED = "application/cloudevents+json"
_NAME = re.compile(r"^[a-z0-9]+$")
_TIME = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")
_INT32 = (-(2**31), 2**31 - 1)


def check_request(headers: Mapping[str, str], body: bytes) -> None:
    """Raise :class:`BadRequest` (``invalid_cloudevent``) unless the request is a valid event."""
    content_type = _header(headers, "content-type") or ""
    if content_type.split(";")[0].strip().lower() == STRUCTURED:
        check_structured(body)
    else:
        check_binary(headers)


def check_structured(body: bytes) -> None:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _invalid("the structured event is not JSON") from exc
    if not isinstance(document, dict):
        raise _invalid("the structured event is not a JSON object")
    if "data" in document and "data_base64" in document:
        raise _invalid("an event has data or data_base64, not both")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    check_attributes(attributes, typed=True)


def check_binary(headers: Mapping[str, str]) -> None:
    attributes: dict[str, Any] = {
        name.lower()[3:]: value for name, value in headers.items() if name.lower()[:3] == "ce-"
    }
    content_type = _header(headers, "content-type")
    if content_type is not None:
        attributes.setdefault("datacontenttype", content_type)
    check_attributes(attributes, typed=False)


def check_attributes(attributes: Mapping[str, Any], *, typed: bool) -> None:
    """``typed``: the JSON format (values keep their JSON types); else every value is text."""
    if attributes.get("specversion") != SPEC_VERSION:
        raise _invalid(f"specversion must be {SPEC_VERSION!r}")
    for name in REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise _invalid(f"{name} must be a non-empty string")
    for name in OPTIONAL:
        value = attributes.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise _invalid(f"{name} must be a non-empty string when present")
    time = attributes.get("time")
    if time is not None and not _TIME.match(time):
        raise _invalid("time must be an RFC 3339 timestamp with seconds")
    media_type = attributes.get("datacontenttype")
    if media_type is not None and not _MEDIA_TYPE.match(media_type):
        raise _invalid("datacontenttype must be an RFC 2046 media type")
    for name, value in attributes.items():
        if not _NAME.match(name):
            raise _invalid("attribute names are lower-case letters and digits only")
        if name in REQUIRED or name in OPTIONAL or name == "specversion" or value is None:
            continue
        if typed and not _extension_value(value):
            raise _invalid(f"extension {name[:20]} has no CloudEvents type")


def _extension_value(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return _INT32[0] <= value <= _INT32[1]
    return False


def _header(headers: Mapping[str, str], wanted: str) -> str | None:
    for name, value in headers.items():
        if name.lower() == wanted:
            return value
    return None


def _invalid(reason: str) -> BadRequest:
    return BadRequest(f"not a valid CloudEvent: {reason}", code="invalid_cloudevent")
