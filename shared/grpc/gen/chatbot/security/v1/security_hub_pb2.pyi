from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_INBOUND: _ClassVar[Direction]
    DIRECTION_OUTBOUND: _ClassVar[Direction]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_ALLOW: _ClassVar[Verdict]
    VERDICT_REDACT: _ClassVar[Verdict]
    VERDICT_BLOCK: _ClassVar[Verdict]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_INBOUND: Direction
DIRECTION_OUTBOUND: Direction
VERDICT_UNSPECIFIED: Verdict
VERDICT_ALLOW: Verdict
VERDICT_REDACT: Verdict
VERDICT_BLOCK: Verdict

class ScreenMessageRequest(_message.Message):
    __slots__ = ("tenant_id", "text", "direction")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    text: str
    direction: Direction
    def __init__(self, tenant_id: _Optional[str] = ..., text: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class ScreenMessageResponse(_message.Message):
    __slots__ = ("verdict", "text", "reason")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    text: str
    reason: str
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., text: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
