"""contrib's `conversation.echo`: answers with what it was given, so the conversation API can be tried
without an LLM (Dapr's docs and quickstarts use it). One output whose one choice joins every text part,
a tool call per defined tool (its arguments the sorted names of its parameters' properties) plus any the
messages carry, and a usage that counts words as tokens."""

from __future__ import annotations

import re
from typing import Any

from sidecar.conversation.messages import (
    Choice,
    ComponentError,
    Request,
    Response,
    Result,
    ToolCall,
    ToolResponse,
    Usage,
)

__all__ = ["ECHO_TYPE", "Echo"]

ECHO_TYPE = "conversation.echo"

# Go's unicode.IsSpace, which strings.Fields splits on (Python's str.split also splits on \x1c-\x1f).
_FIELD_SEPARATORS = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def _go_type(value: Any) -> str:
    """Go's `%T` of a value decoded from a protobuf Struct (`AsMap`)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def approximate_tokens(text: str) -> int:
    """Words as tokens (contrib's `approximateTokensFromWords`)."""
    return len([w for w in _FIELD_SEPARATORS.split(text) if w])


class Echo:
    """The component; it has no metadata, so any given is ignored as contrib's Init ignores it."""

    type = ECHO_TYPE

    def __init__(self, name: str) -> None:
        self.name = name

    def converse(self, request: Request) -> Response:
        if request.messages is None:
            return Response(outputs=[], conversation_context=request.conversation_context)
        tool_calls = self._calls_of_tools(request)
        texts: list[str] = []
        for message in request.messages:
            for part in message.parts:
                if isinstance(part, str):
                    texts.append(part)
                elif isinstance(part, ToolCall):  # a call made earlier in a multi-turn conversation
                    tool_calls.append(part)
                elif isinstance(part, ToolResponse):
                    texts.append(
                        f"Tool Response for tool ID '{part.tool_call_id}' with name '{part.name}': "
                        f"{part.content}"
                    )
        content = "\n".join(texts)
        stop = "tool_calls" if tool_calls else "stop"  # OpenAI's finish reason for tool calls
        choice = Choice(stop, 0, content, tool_calls or None)
        tokens = approximate_tokens(content)
        return Response(
            outputs=[Result(stop, [choice])],
            conversation_context=request.conversation_context,
            usage=Usage(tokens, tokens, tokens + tokens),
        )

    @staticmethod
    def _calls_of_tools(request: Request) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index, tool in enumerate(request.tools or ()):
            parameters = tool.parameters
            if parameters is not None and not isinstance(parameters, dict):
                raise ComponentError(
                    f"tool function parameters must be a map[string]any, got {_go_type(parameters)}"
                )
            names: list[str] = []
            if parameters is not None and "properties" in parameters:
                properties = parameters["properties"]
                if not isinstance(properties, dict):
                    raise ComponentError(
                        f"tool function properties must be a map[string]any, got {_go_type(properties)}"
                    )
                names = sorted(properties)
            calls.append(ToolCall(str(index), tool.type, tool.name, ",".join(names)))
        return calls
