"""daprd's conversation API (`pkg/api/universal/conversation.go`), one implementation for gRPC and HTTP:
a `ConverseAlpha1`/`ConverseAlpha2` request checked and translated into the component's `Request`, its
answer translated back, PII scrubbed where asked, errors as daprd's `ERR_CONVERSATION_*`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from dapr.proto.runtime.v1 import ai_pb2
from google.protobuf import json_format

from sidecar.conversation.messages import (
    ComponentError,
    Message,
    Part,
    Request,
    Response,
    Tool,
    ToolCall,
    ToolResponse,
)
from sidecar.conversation.pii import scrub
from sidecar.errors import DaprError, error

__all__ = ["Conversation", "ConversationAPI"]

log = logging.getLogger("sidecar.conversation")

# daprd's mapRoleToChatMessageType: Alpha1 roles to langchaingo's; anything else is the user's.
_ROLES = {
    "user": "human",
    "human": "human",
    "system": "system",
    "assistant": "ai",
    "ai": "ai",
    "tool": "tool",
    "function": "function",
    "generic": "generic",
}
_TOOL_CHOICE_HINT = (
    "tool choice must be 'auto', 'none', 'required', or a specific tool name matching the tools available "
    "to be used"
)
_TOOL_NOT_FOUND = (
    "tool choice selected was not found. Must be 'auto', 'none', 'required', or a specific tool name "
    "matching the tools available to be used"
)


class Conversation(Protocol):
    """A conversation component (contrib's `conversation.Conversation`)."""

    type: str

    def converse(self, request: Request) -> Response: ...


def _invalid(name: str, why: str) -> DaprError:
    return error(
        "ERR_CONVERSATION_INVALID_PARMS", f"failed conversing with component {name}: invalid params: {why}"
    )


class ConversationAPI:
    """The conversation components by name, and the two versions of the API over them."""

    def __init__(self, components: Mapping[str, Conversation]) -> None:
        self.components = components

    def _component(self, name: str) -> Conversation:
        component = self.components.get(name)
        if component is None:  # daprd has no "not configured" error here: none found is not found
            raise error("ERR_CONVERSATION_NOT_FOUND", f"failed finding conversation component {name}")
        return component

    def _converse(self, name: str, component: Conversation, request: Request) -> Response:
        try:
            return component.converse(request)
        except ComponentError as exc:
            message = f"failed conversing with component {name}: {exc}"
            raise error("ERR_CONVERSATION_INVOKE", message) from None

    def alpha1(self, req: Any) -> Any:
        """`ConverseAlpha1`: role-tagged texts in, one `result` string per output."""
        name = req.name
        component = self._component(name)
        if not req.inputs:
            raise _missing_inputs(name)
        messages = [
            Message(_ROLES.get(i.role, "human"), [scrub(i.content) if i.scrubPII else i.content])
            for i in req.inputs
        ]
        # daprd hands Alpha1 calls to the component as Alpha2 ones with an empty tool list
        answer = self._converse(name, component, Request(messages, tools=[], temperature=req.temperature))
        response = ai_pb2.ConversationResponse()
        if req.contextID:
            response.contextID = req.contextID
        for output in answer.outputs:
            content = output.choices[0].content if output.choices else ""
            response.outputs.add(result=scrub(content) if req.scrubPII else content).parameters.MergeFrom(
                req.parameters
            )
        return response

    def alpha2(self, req: Any) -> Any:
        """`ConverseAlpha2`: typed messages, tools and tool calls in; choices, tool calls and usage out."""
        name = req.name
        component = self._component(name)
        if not req.inputs:
            raise _missing_inputs(name)
        messages = [self._message(name, m, i.scrub_pii) for i in req.inputs for m in i.messages]
        tools = list(req.tools)
        choice = req.tool_choice or ("auto" if tools else "")
        if choice == "required" and not tools:
            raise _invalid(name, _TOOL_CHOICE_HINT)
        if choice not in ("auto", "none", "required", "") and tools:
            if not any(t.HasField("function") and t.function.name == choice for t in tools):
                raise _invalid(name, _TOOL_NOT_FOUND)
        request = Request(
            messages,
            tools=[
                Tool(
                    t.function.name,
                    t.function.description,
                    json_format.MessageToDict(t.function.parameters),
                )
                for t in tools
                if t.HasField("function")
            ]
            if tools
            else None,
            tool_choice=choice or None,
            temperature=req.temperature,
            metadata=dict(req.metadata),
        )
        answer = self._converse(name, component, request)
        response = ai_pb2.ConversationResponseAlpha2()
        if req.context_id:
            response.context_id = req.context_id
        for output in answer.outputs:
            result = response.outputs.add()
            for c in output.choices:
                message = ai_pb2.ConversationResultMessage()
                if c.content:
                    message.content = scrub(c.content) if req.scrub_pii else c.content
                for call in c.tool_calls or ():
                    tool_call = message.tool_calls.add()
                    tool_call.function.name = call.name
                    tool_call.function.arguments = call.arguments
                    if call.id:
                        tool_call.id = call.id
                result.choices.add(finish_reason=c.finish_reason, index=c.index, message=message)
            if answer.usage is not None:
                result.usage.completion_tokens = answer.usage.completion_tokens
                result.usage.prompt_tokens = answer.usage.prompt_tokens
                result.usage.total_tokens = answer.usage.total_tokens
            if answer.model:
                result.model = answer.model
        return response

    def _message(self, name: str, message: Any, scrub_pii: bool) -> Message:
        """One Alpha2 message as langchaingo's: developer and user messages are the human's."""
        kind = message.WhichOneof("message_types")
        if kind is None:
            raise _invalid(name, "message type cannot be nil")
        body = getattr(message, kind)
        texts: list[str] = [scrub(c.text) if scrub_pii else c.text for c in body.content]
        if kind == "of_tool":
            tool_id = body.tool_id
            return Message("tool", [ToolResponse(tool_id, body.name, text) for text in texts])
        parts: list[Part] = list(texts)
        if kind == "of_assistant":
            for call in body.tool_calls:
                if call.WhichOneof("tool_types") is None:
                    raise _invalid(name, "tool types cannot be nil")
                parts.append(ToolCall(call.id, "function", call.function.name, call.function.arguments))
        return Message({"of_system": "system", "of_assistant": "ai"}.get(kind, "human"), parts)


def _missing_inputs(name: str) -> DaprError:
    return error(
        "ERR_CONVERSATION_MISSING_INPUTS",
        f"failed conversing with component {name}: missing inputs in request",
    )
