"""The conversation API's refusals, as daprd's `ERR_CONVERSATION_*` (plain API errors: a status and a
message on gRPC, `{"errorCode", "message"}` on HTTP): an unknown component, none configured, no inputs,
invalid messages and tool choices, and the component's own failure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc import conversation as c

from sidecar.thread import SidecarThread
from tests.sidecar.conversation.sdk import client

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

USER = c.ConversationInputAlpha2(messages=[c.create_user_message("hi")])
LOOKUP = c.ConversationTools(
    function=c.ConversationToolsFunction(name="lookup", parameters={"type": "object"})
)


def _post(thread: SidecarThread, version: str, name: str, body: Any) -> httpx.Response:
    with httpx.Client(base_url=f"http://127.0.0.1:{thread.http_port}") as http:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        return http.post(f"/v1.0-{version}/conversation/{name}/converse", **kwargs)


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"errorCode", "message"}  # daprd's APIError carries no details
    return response.status_code, body["errorCode"], body["message"]


@pytest.mark.parametrize("sidecar", ["echo_sidecar", "bare_sidecar"])
def test_an_unknown_or_missing_component_is_not_found(sidecar: str, request: pytest.FixtureRequest) -> None:
    thread: SidecarThread = request.getfixturevalue(sidecar)
    name = "nope" if sidecar == "echo_sidecar" else "echo"  # the bare sidecar has no conversation component
    message = f"failed finding conversation component {name}"
    with client(thread) as dapr:
        with pytest.raises(DaprGrpcError) as one:
            dapr.converse_alpha1(name, [c.ConversationInput("hi")])
        with pytest.raises(DaprGrpcError) as two:
            dapr.converse_alpha2(name, [USER])
    for caught in (one, two):
        assert (caught.value.code().name, caught.value.details()) == ("INVALID_ARGUMENT", message)
    for version in ("alpha1", "alpha2"):
        got = _refusal(_post(thread, version, name, {"inputs": [{"content": "hi"}]}))
        assert got == (400, "ERR_CONVERSATION_NOT_FOUND", message)


def test_no_inputs_are_refused(echo_sidecar: SidecarThread) -> None:
    message = "failed conversing with component echo: missing inputs in request"
    with client(echo_sidecar) as dapr:
        with pytest.raises(DaprGrpcError) as one:
            dapr.converse_alpha1("echo", [])
        with pytest.raises(DaprGrpcError) as two:
            dapr.converse_alpha2("echo", [])
    for caught in (one, two):
        assert (caught.value.code().name, caught.value.details()) == ("INVALID_ARGUMENT", message)
    for body in ("", {}, {"inputs": []}):  # an empty body is an empty request, as in daprd
        got = _refusal(_post(echo_sidecar, "alpha2", "echo", body))
        assert got == (400, "ERR_CONVERSATION_MISSING_INPUTS", message)


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({}, "message type cannot be nil"),
        ({"ofAssistant": {"toolCalls": [{"id": "call-1"}]}}, "tool types cannot be nil"),
    ],
)
def test_invalid_messages_are_refused(echo_sidecar: SidecarThread, message: Any, why: str) -> None:
    got = _refusal(_post(echo_sidecar, "alpha2", "echo", {"inputs": [{"messages": [message]}]}))
    assert got == (
        400,
        "ERR_CONVERSATION_INVALID_PARMS",
        f"failed conversing with component echo: invalid params: {why}",
    )


def test_tool_choice_must_name_an_available_tool(echo_sidecar: SidecarThread) -> None:
    prefix = "failed conversing with component echo: invalid params: "
    with client(echo_sidecar) as dapr:
        with pytest.raises(DaprGrpcError) as required:
            dapr.converse_alpha2("echo", [USER], tool_choice="required")
        with pytest.raises(DaprGrpcError) as unknown:
            dapr.converse_alpha2("echo", [USER], tools=[LOOKUP], tool_choice="search")
        # daprd checks a named choice only against tools given: with none it passes
        assert (
            dapr.converse_alpha2("echo", [USER], tool_choice="search").outputs[0].choices[0].finish_reason
            == "stop"
        )
        chosen = dapr.converse_alpha2("echo", [USER], tools=[LOOKUP], tool_choice="lookup")
        assert chosen.outputs[0].choices[0].finish_reason == "tool_calls"
    assert required.value.code().name == "INVALID_ARGUMENT"
    assert required.value.details() == prefix + (
        "tool choice must be 'auto', 'none', 'required', or a specific tool name matching the tools "
        "available to be used"
    )
    assert unknown.value.details() == prefix + (
        "tool choice selected was not found. Must be 'auto', 'none', 'required', or a specific tool name "
        "matching the tools available to be used"
    )


def test_the_components_failure_is_an_invoke_error(echo_sidecar: SidecarThread) -> None:
    """echo refuses a tool whose `properties` is no object, with Go's name for what it got."""
    body = {
        "inputs": [{"messages": [{"ofUser": {"content": [{"text": "hi"}]}}]}],
        "tools": [{"function": {"name": "lookup", "parameters": {"properties": "q"}}}],
    }
    message = (
        "failed conversing with component echo: tool function properties must be a map[string]any, got string"
    )
    assert _refusal(_post(echo_sidecar, "alpha2", "echo", body)) == (500, "ERR_CONVERSATION_INVOKE", message)
    odd = c.ConversationTools(
        function=c.ConversationToolsFunction(name="lookup", parameters={"properties": [1]})
    )
    with client(echo_sidecar) as dapr, pytest.raises(DaprGrpcError) as caught:
        dapr.converse_alpha2("echo", [USER], tools=[odd])
    assert caught.value.code().name == "INTERNAL"
    assert caught.value.details().endswith("got []interface {}")


def test_a_malformed_body_is_refused(echo_sidecar: SidecarThread) -> None:
    status, code, message = _refusal(_post(echo_sidecar, "alpha1", "echo", "{not json"))
    assert (status, code) == (400, "ERR_MALFORMED_REQUEST")
    assert message.startswith("failed deserializing HTTP body: ")
