"""The request and answer a conversation component sees (contrib's `conversation.Request`/`Response` over
langchaingo's message parts), so daprd's translation of both API versions and the component stay apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Choice",
    "ComponentError",
    "Message",
    "Part",
    "Request",
    "Response",
    "Result",
    "Tool",
    "ToolCall",
    "ToolResponse",
    "Usage",
]


class ComponentError(Exception):
    """The component failed the call; daprd reports it as `ERR_CONVERSATION_INVOKE`."""


@dataclass(frozen=True)
class ToolCall:
    """langchaingo's `llms.ToolCall`: a call of one function, its arguments as the model wrote them."""

    id: str
    type: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResponse:
    """langchaingo's `llms.ToolCallResponse`: what a tool answered to one call."""

    tool_call_id: str
    name: str
    content: str


# A message part: text (langchaingo's TextContent), a tool call or a tool's response.
Part = str | ToolCall | ToolResponse


@dataclass(frozen=True)
class Message:
    role: str  # langchaingo's ChatMessageType: human, system, ai, tool, function, generic
    parts: list[Part]


@dataclass(frozen=True)
class Tool:
    """A function the model may call; `parameters` is its JSON schema as a decoded object."""

    name: str
    description: str
    parameters: Any
    type: str = "function"


@dataclass
class Request:
    messages: list[Message] | None
    tools: list[Tool] | None = None
    tool_choice: str | None = None
    temperature: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)
    conversation_context: str = ""


@dataclass(frozen=True)
class Choice:
    finish_reason: str
    index: int
    content: str
    tool_calls: list[ToolCall] | None = None


@dataclass(frozen=True)
class Result:
    stop_reason: str
    choices: list[Choice]


@dataclass(frozen=True)
class Usage:
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Response:
    outputs: list[Result]
    model: str = ""
    conversation_context: str = ""
    usage: Usage | None = None
