"""The conversation API against `conversation.echo` on a real embedded sidecar: the SDK's
`converse_alpha1`/`converse_alpha2` over gRPC and daprd's HTTP routes, answered as contrib's echo and
daprd's translation answer (one output joining the texts, tool calls, usage, context id, PII scrubbing)."""

from __future__ import annotations

import httpx
import pytest
from dapr.clients.grpc import conversation as c

from sidecar.thread import SidecarThread
from tests.sidecar.conversation.sdk import client

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

WEATHER = c.ConversationTools(
    function=c.ConversationToolsFunction(
        name="get_weather",
        description="The weather in a city",
        parameters={
            "type": "object",
            "properties": {"unit": {"type": "string"}, "city": {"type": "string"}},
            "required": ["city"],
        },
    )
)


def _text(text: str) -> list[c.ConversationMessageContent]:
    return [c.ConversationMessageContent(text=text)]


def test_alpha1_echoes_the_inputs_as_one_result(echo_sidecar: SidecarThread) -> None:
    with client(echo_sidecar) as dapr:
        reply = dapr.converse_alpha1(
            "echo",
            [
                c.ConversationInput("What is Dapr?", role="user"),
                c.ConversationInput("Be brief.", role="system"),
            ],
            context_id="chat-1",
            parameters={"max_tokens": 10},
            temperature=0.2,
        )
    assert reply.context_id == "chat-1"
    assert [o.result for o in reply.outputs] == ["What is Dapr?\nBe brief."]
    assert list(reply.outputs[0].parameters) == ["max_tokens"]  # the request's parameters, given back


def test_alpha2_messages_of_each_role_and_a_tool(echo_sidecar: SidecarThread) -> None:
    called = c.ConversationToolCalls(
        id="call-1",
        function=c.ConversationToolCallsOfFunction(name="get_weather", arguments='{"city": "Paris"}'),
    )
    messages = [
        c.ConversationMessage(
            of_developer=c.ConversationMessageOfDeveloper(content=_text("Answer in French."))
        ),
        c.ConversationMessage(
            of_system=c.ConversationMessageOfSystem(content=_text("You are a weather bot."))
        ),
        c.create_user_message("What is the weather in Paris?"),
        c.ConversationMessage(
            of_assistant=c.ConversationMessageOfAssistant(content=_text("Let me check."), tool_calls=[called])
        ),
        c.create_tool_message("call-1", "get_weather", "sunny, 21C"),
    ]
    with client(echo_sidecar) as dapr:
        reply = dapr.converse_alpha2(
            "echo", [c.ConversationInputAlpha2(messages=messages)], context_id="chat-2", tools=[WEATHER]
        )
    assert reply.context_id == "chat-2"
    [output] = reply.outputs
    [choice] = output.choices
    assert (choice.finish_reason, choice.index) == ("tool_calls", 0)
    assert choice.message.content == (
        "Answer in French.\nYou are a weather bot.\nWhat is the weather in Paris?\nLet me check.\n"
        "Tool Response for tool ID 'call-1' with name 'get_weather': sunny, 21C"
    )
    # a call per defined tool (its id the tool's index, its arguments its sorted property names), then
    # the calls the messages carried
    assert [(t.id, t.function.name, t.function.arguments) for t in choice.message.tool_calls] == [
        ("0", "get_weather", "city,unit"),
        ("call-1", "get_weather", '{"city": "Paris"}'),
    ]
    assert output.usage is not None
    assert (output.usage.prompt_tokens, output.usage.completion_tokens, output.usage.total_tokens) == (
        28,
        28,
        56,
    )
    assert output.model is None


def test_alpha2_without_tools_stops(echo_sidecar: SidecarThread) -> None:
    with client(echo_sidecar) as dapr:
        reply = dapr.converse_alpha2(
            "echo",
            [
                c.ConversationInputAlpha2(messages=[c.create_user_message("hello")]),
                c.ConversationInputAlpha2(messages=[c.create_user_message("again")]),
            ],
            tool_choice="none",
        )
    assert reply.context_id == ""  # none asked for, none given
    [choice] = reply.outputs[0].choices
    assert (choice.finish_reason, choice.message.content, choice.message.tool_calls) == (
        "stop",
        "hello\nagain",
        [],
    )


def test_scrub_pii_replaces_what_daprd_scrubs(echo_sidecar: SidecarThread) -> None:
    with client(echo_sidecar) as dapr:
        one = dapr.converse_alpha1(
            "echo",
            [
                c.ConversationInput("mail jane@example.com", scrub_pii=True),
                c.ConversationInput("from 10.0.0.1"),  # not scrubbed on the way in ...
            ],
        )
        assert [o.result for o in one.outputs] == ["mail <EMAIL_ADDRESS>\nfrom 10.0.0.1"]
        one = dapr.converse_alpha1("echo", [c.ConversationInput("from 10.0.0.1")], scrub_pii=True)
        assert [o.result for o in one.outputs] == ["from <IP>"]  # ... but on the way out when asked
        two = dapr.converse_alpha2(
            "echo",
            [
                c.ConversationInputAlpha2(
                    messages=[c.create_user_message("call +4422222222")], scrub_pii=True
                ),
                c.ConversationInputAlpha2(messages=[c.create_user_message("or jane@example.com")]),
            ],
        )
        assert two.outputs[0].choices[0].message.content == "call <PHONE_NUMBER>\nor jane@example.com"
        two = dapr.converse_alpha2(
            "echo",
            [c.ConversationInputAlpha2(messages=[c.create_user_message("or jane@example.com")])],
            scrub_pii=True,
        )
        assert two.outputs[0].choices[0].message.content == "or <EMAIL_ADDRESS>"


def test_http_routes_answer_daprd_protojson(echo_sidecar: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{echo_sidecar.http_port}") as http:
        r = http.post(
            "/v1.0-alpha1/conversation/echo/converse",
            json={"inputs": [{"content": "hi", "role": "user"}, {"content": "there"}], "contextID": "h1"},
        )
        assert r.status_code == 200
        assert r.json() == {"contextID": "h1", "outputs": [{"result": "hi\nthere"}]}
        body = {
            "inputs": [{"messages": [{"ofUser": {"content": [{"text": "hi there"}]}}]}],
            "contextId": "h2",
            "tools": [{"function": {"name": "lookup", "parameters": {"properties": {"q": {}}}}}],
            "toolChoice": "lookup",
            "unknownField": True,  # protojson with DiscardUnknown, as daprd reads it
        }
        r = http.post("/v1.0-alpha2/conversation/echo/converse", json=body)
        assert r.status_code == 200
        assert r.json() == {
            "contextId": "h2",
            "outputs": [
                {
                    "choices": [
                        {
                            "finishReason": "tool_calls",
                            "message": {
                                "content": "hi there",
                                "toolCalls": [{"id": "0", "function": {"name": "lookup", "arguments": "q"}}],
                            },
                        }
                    ],
                    "usage": {"completionTokens": "2", "promptTokens": "2", "totalTokens": "4"},
                }
            ],
        }


def test_metadata_lists_the_component(echo_sidecar: SidecarThread) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{echo_sidecar.http_port}") as http:
        components = http.get("/v1.0/metadata").json()["components"]
    assert {"name": "echo", "type": "conversation.echo", "version": "v1"} in [
        {k: v for k, v in entry.items() if k != "capabilities"} for entry in components
    ]


def test_http_alpha2_with_every_field(echo_sidecar: SidecarThread) -> None:
    """daprd's own integration case (conversation/alpha2/http/basic.go, "all fields"), answered alike."""
    body = {
        "name": "ignored: the path names the component",
        "contextId": "test-conversation-123",
        "inputs": [
            {
                "messages": [{"ofUser": {"name": "test-user", "content": [{"text": "well hello there"}]}}],
                "scrubPII": False,
            },
            {
                "messages": [
                    {
                        "ofSystem": {
                            "name": "test-system",
                            "content": [{"text": "You are a helpful assistant"}],
                        }
                    }
                ],
                "scrubPII": True,
            },
        ],
        "parameters": {
            "max_tokens": {"@type": "type.googleapis.com/google.protobuf.Int64Value", "value": "100"},
            "model": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "test-model"},
        },
        "metadata": {"api_key": "test-key", "version": "1.0"},
        "scrubPii": True,
        "temperature": 0.7,
        "responseFormat": {
            "type": "object",
            "properties": {"result": {"type": "string"}},
            "required": ["result"],
        },
        "promptCacheRetention": "86400s",
        "tools": [
            {
                "function": {
                    "name": "test_function",
                    "description": "A test function",
                    "parameters": {
                        "type": "object",
                        "properties": {"param1": {"type": "string", "description": "A test parameter"}},
                        "required": ["param1"],
                    },
                }
            }
        ],
        "toolChoice": "auto",
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{echo_sidecar.http_port}") as http:
        r = http.post("/v1.0-alpha2/conversation/echo/converse", json=body)
    assert r.status_code == 200
    assert r.json() == {
        "contextId": "test-conversation-123",
        "outputs": [
            {
                "choices": [
                    {
                        "finishReason": "tool_calls",
                        "message": {
                            "content": "well hello there\nYou are a helpful assistant",
                            "toolCalls": [
                                {"function": {"arguments": "param1", "name": "test_function"}, "id": "0"}
                            ],
                        },
                    }
                ],
                "usage": {"completionTokens": "8", "promptTokens": "8", "totalTokens": "16"},
            }
        ],
    }


def test_inputs_without_messages_get_an_empty_choice(echo_sidecar: SidecarThread) -> None:
    """daprd hands echo an empty (not absent) message list: one choice, no content, zero usage."""
    with httpx.Client(base_url=f"http://127.0.0.1:{echo_sidecar.http_port}") as http:
        r = http.post("/v1.0-alpha2/conversation/echo/converse", json={"inputs": [{}]})
    assert r.status_code == 200
    assert r.json() == {"outputs": [{"choices": [{"finishReason": "stop", "message": {}}], "usage": {}}]}
