"""Dapr's conversation API over its one local component, `conversation.echo`: the service both wires use,
the component and daprd's PII scrubbing."""

from __future__ import annotations

from sidecar.conversation.echo import ECHO_TYPE, Echo
from sidecar.conversation.service import Conversation, ConversationAPI

__all__ = ["ECHO_TYPE", "Conversation", "ConversationAPI", "Echo"]
