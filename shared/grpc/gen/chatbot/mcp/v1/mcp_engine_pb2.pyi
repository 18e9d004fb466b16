from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateReplyRequest(_message.Message):
    __slots__ = ("tenant_id", "channel", "conversation_key", "message", "history", "session")
    class SessionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel: str
    conversation_key: str
    message: Message
    history: _containers.RepeatedCompositeFieldContainer[Turn]
    session: _containers.ScalarMap[str, str]
    def __init__(self, tenant_id: _Optional[str] = ..., channel: _Optional[str] = ..., conversation_key: _Optional[str] = ..., message: _Optional[_Union[Message, _Mapping]] = ..., history: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., session: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "text", "kind", "sender_id", "sender_name", "interactive_reply_id", "interactive_reply_title")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_REPLY_TITLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    kind: str
    sender_id: str
    sender_name: str
    interactive_reply_id: str
    interactive_reply_title: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., kind: _Optional[str] = ..., sender_id: _Optional[str] = ..., sender_name: _Optional[str] = ..., interactive_reply_id: _Optional[str] = ..., interactive_reply_title: _Optional[str] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("role", "text")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    role: str
    text: str
    def __init__(self, role: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class QuickReply(_message.Message):
    __slots__ = ("id", "title")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class ReplyPart(_message.Message):
    __slots__ = ("text", "quick_replies")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    QUICK_REPLIES_FIELD_NUMBER: _ClassVar[int]
    text: str
    quick_replies: _containers.RepeatedCompositeFieldContainer[QuickReply]
    def __init__(self, text: _Optional[str] = ..., quick_replies: _Optional[_Iterable[_Union[QuickReply, _Mapping]]] = ...) -> None: ...

class GenerateReplyResponse(_message.Message):
    __slots__ = ("parts", "intent", "confidence", "handoff")
    PARTS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[ReplyPart]
    intent: str
    confidence: float
    handoff: bool
    def __init__(self, parts: _Optional[_Iterable[_Union[ReplyPart, _Mapping]]] = ..., intent: _Optional[str] = ..., confidence: _Optional[float] = ..., handoff: _Optional[bool] = ...) -> None: ...
